import { ProblemError } from "./errors.js";

const MAX_WAIT_SECONDS = 60;

/**
 * Reads `Prefer: wait` / `wait=N` (1–60 s). Returns the seconds to hold the request, or undefined when
 * the client did not ask to wait. Other preferences in the header are ignored, as RFC 7240 asks.
 */
export function parsePreferWait(header: string | undefined): number | undefined {
  if (!header) return undefined;
  for (const part of header.split(",")) {
    const preference = part.trim().split(";")[0]?.trim() ?? "";
    if (preference === "wait") return MAX_WAIT_SECONDS;
    const match = /^wait\s*=\s*(\S+)$/.exec(preference);
    if (!match) continue;
    const seconds = Number(match[1]);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_WAIT_SECONDS) {
      throw new ProblemError(
        422,
        "Invalid Prefer header",
        `Prefer: wait=N takes a whole number of seconds between 1 and ${MAX_WAIT_SECONDS}, got ${JSON.stringify(match[1])}`,
      );
    }
    return seconds;
  }
  return undefined;
}

/**
 * Reads `Cancel-After`: a duration like `30`, `30s`, `5m`, `1h30m45s` (bare numbers are seconds),
 * between 5 seconds and 24 hours. Returns milliseconds.
 */
export function parseCancelAfter(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  const invalid = (why: string) =>
    new ProblemError(422, "Invalid Cancel-After header", `Cancel-After ${JSON.stringify(value)} ${why}`);
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(value)) {
    ms = Number(value) * 1000;
  } else {
    const match = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(value);
    if (!match || value === "") throw invalid("is not a duration such as 30s, 5m or 1h30m");
    ms = (Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0)) * 1000;
  }
  if (ms < 5000) throw invalid("is shorter than the minimum of 5 seconds");
  if (ms > 24 * 3600 * 1000) throw invalid("is longer than the maximum of 24 hours");
  return ms;
}
