import { parseProgressFromLogs } from "@replicant/sdk";
import type { CliIo } from "./io.js";

export interface ProgressState {
  label: string;
  status: string;
  percentage: number | undefined;
  current: number | undefined;
  total: number | undefined;
  lastLog: string | undefined;
  elapsedMs: number;
}

/** `replicate/hello-world · processing [██████░░░░░░] 50% 5/10 · 3.2s · <last log line>` */
export function progressText(state: ProgressState, columns = 100): string {
  const parts = [state.label, state.status];
  let text = parts.join(" · ");
  if (state.percentage !== undefined) {
    const width = 20;
    const filled = Math.max(0, Math.min(width, Math.round(state.percentage * width)));
    const counts = state.total !== undefined ? ` ${state.current}/${state.total}` : "";
    text += ` [${"█".repeat(filled)}${"░".repeat(width - filled)}] ${Math.round(state.percentage * 100)}%${counts}`;
  }
  text += ` · ${(state.elapsedMs / 1000).toFixed(1)}s`;
  if (state.lastLog && state.percentage === undefined) text += ` · ${state.lastLog}`;
  // The spinner takes 2 columns; a wrapped line would leave copies behind on every redraw.
  const room = Math.max(20, columns - 3);
  return text.length > room ? `${text.slice(0, room - 1)}…` : text;
}

/** A spinner (with a bar once tqdm-style progress shows up in the logs), fed by statuses and log lines. */
export interface ProgressDisplay {
  status(status: string): void;
  log(line: string): void;
  /** Stops the display (clearing its line) before output is printed. */
  stop(): void;
}

/**
 * A live display on stderr when it is a terminal, else nothing. With `showLogs`, log lines are printed to
 * stderr either way (above the spinner when there is one).
 */
export async function createProgress(
  io: CliIo,
  options: { label: string; showLogs: boolean; enabled: boolean },
): Promise<ProgressDisplay> {
  const state: ProgressState = {
    label: options.label,
    status: "starting",
    percentage: undefined,
    current: undefined,
    total: undefined,
    lastLog: undefined,
    elapsedMs: 0,
  };
  const started = Date.now();
  const recentLogs: string[] = [];
  const feedLog = (line: string) => {
    const trimmed = line.replace(/\r/g, "").trimEnd();
    if (!trimmed) return;
    recentLogs.push(trimmed);
    if (recentLogs.length > 20) recentLogs.shift();
    const progress = parseProgressFromLogs(recentLogs.join("\n"));
    if (progress) {
      state.percentage = progress.percentage;
      state.current = progress.current;
      state.total = progress.total;
    }
    state.lastLog = trimmed;
  };
  const stream = io.stderr.stream;
  if (!options.enabled || !io.stderr.isTTY || !stream) {
    return {
      status: (status) => {
        state.status = status;
      },
      log: (line) => {
        feedLog(line);
        if (options.showLogs) io.stderr.write(line.endsWith("\n") ? line : `${line}\n`);
      },
      stop: () => undefined,
    };
  }
  const { default: createSpinner } = await import("yocto-spinner");
  const spinner = createSpinner({ stream, handleSignals: false });
  const render = () => {
    state.elapsedMs = Date.now() - started;
    spinner.text = progressText(state, io.stderr.columns ?? 100);
  };
  render();
  spinner.start();
  const timer = setInterval(render, 100);
  timer.unref();
  let stopped = false;
  return {
    status: (status) => {
      state.status = status;
      if (!stopped) render();
    },
    log: (line) => {
      feedLog(line);
      if (options.showLogs) io.stderr.write(line.endsWith("\n") ? line : `${line}\n`);
      if (!stopped) render();
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      spinner.stop();
    },
  };
}
