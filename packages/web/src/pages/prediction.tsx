import type { ModelVersion, Prediction, Training } from "@replicant/protocol";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, localUrl } from "../api";
import { CodePanel } from "../code";
import { Link } from "../router";
import { outputDisplay } from "../schema";
import type { SnippetTarget } from "../snippets";
import { CopyButton, ErrorBox, Loading, PageTitle, StatusBadge, Time } from "../ui";

type Run = (Prediction | Training) & { kind: "prediction" | "training" };

const TERMINAL = new Set(["succeeded", "failed", "canceled", "aborted"]);

async function loadRun(id: string, signal: AbortSignal): Promise<Run> {
  if (new URLSearchParams(location.search).get("kind") === "training") {
    const t = await api<Training>(`/v1/trainings/${encodeURIComponent(id)}`, { signal });
    return { ...t, kind: "training" };
  }
  try {
    const p = await api<Prediction>(`/v1/predictions/${encodeURIComponent(id)}`, { signal });
    return { ...p, kind: "prediction" };
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    const t = await api<Training>(`/v1/trainings/${encodeURIComponent(id)}`, { signal });
    return { ...t, kind: "training" };
  }
}

/** `/p/{id}`: a prediction (or training) live: status, streamed text, output previews, logs, metrics, cancel. */
export function PredictionPage({ id }: { id: string }) {
  const [run, setRun] = useState<Run | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [streamed, setStreamed] = useState<string[]>([]);
  const [streamLogs, setStreamLogs] = useState("");
  const [display, setDisplay] = useState<"concatenate" | "other">("other");
  const [canceling, setCanceling] = useState(false);
  const [cancelError, setCancelError] = useState<unknown>(undefined);
  const streamOpened = useRef(false);
  const terminal = run ? TERMINAL.has(run.status) : false;

  // Load, then poll until terminal (status, metrics; output and logs for models that do not stream).
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    setRun(undefined);
    setStreamed([]);
    setStreamLogs("");
    streamOpened.current = false;
    const tick = async () => {
      try {
        const next = await loadRun(id, controller.signal);
        setRun(next);
        setError(undefined);
        if (!TERMINAL.has(next.status)) timer = setTimeout(tick, 1000);
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e);
        if (!(e instanceof ApiError && e.status === 404)) timer = setTimeout(tick, 3000);
      }
    };
    void tick();
    return () => {
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, [id]);

  // The output's display from the version's schema.
  const model = run?.model;
  const version = run?.version;
  useEffect(() => {
    if (!model || !version || !/^[0-9a-f]{64}$/.test(version)) return;
    const [owner, name] = model.split("/");
    if (!owner || !name) return;
    const controller = new AbortController();
    api<ModelVersion>(`/v1/models/${owner}/${name}/versions/${version}`, { signal: controller.signal }).then(
      (v) => setDisplay(outputDisplay(v.openapi_schema)),
      () => undefined,
    );
    return () => controller.abort();
  }, [model, version]);

  // Text as it comes: the prediction's SSE stream (`urls.stream`), opened once while it runs.
  const streamUrl = run && "stream" in run.urls ? run.urls.stream : undefined;
  useEffect(() => {
    if (!streamUrl || terminal || streamOpened.current) return;
    streamOpened.current = true;
    const source = new EventSource(localUrl(streamUrl));
    source.addEventListener("output", (event) => {
      const data = (event as MessageEvent<string>).data;
      setStreamed((chunks) => [...chunks, data]);
    });
    source.addEventListener("logs", (event) => {
      const data = (event as MessageEvent<string>).data;
      setStreamLogs((logs) => `${logs}${data}\n`);
    });
    const finish = () => {
      source.close();
      void loadRun(id, new AbortController().signal).then(setRun, () => undefined);
    };
    source.addEventListener("done", finish);
    source.addEventListener("error", (event) => {
      // A server-sent `error` event carries data; a transport error does not. EventSource retries the latter.
      if ((event as MessageEvent<string>).data === undefined && source.readyState !== EventSource.CLOSED)
        return;
      finish();
    });
    return () => source.close();
  }, [streamUrl, terminal, id]);

  if (error && !run) {
    return (
      <div>
        <PageTitle>Prediction {id}</PageTitle>
        <ErrorBox error={error} />
      </div>
    );
  }
  if (!run) return <Loading />;

  const cancel = async () => {
    setCanceling(true);
    setCancelError(undefined);
    try {
      const next = await api<Prediction>(run.urls.cancel, { method: "POST" });
      setRun({ ...next, kind: run.kind });
    } catch (e) {
      setCancelError(e);
    } finally {
      setCanceling(false);
    }
  };

  const logs = run.logs.length >= streamLogs.length ? run.logs : streamLogs;
  const shareUrl = `${location.origin}/p/${run.id}`;
  const [owner, name] = run.model.split("/");
  const deployment = "deployment" in run ? run.deployment : undefined;
  let target: SnippetTarget | undefined;
  if (deployment) {
    const [dOwner, dName] = deployment.split("/");
    if (dOwner && dName) target = { kind: "deployment", owner: dOwner, name: dName };
  } else if (owner && name) {
    target = /^[0-9a-f]{64}$/.test(run.version)
      ? { kind: "version", owner, name, version: run.version }
      : { kind: "model", owner, name };
  }

  return (
    <div>
      <PageTitle
        sub={
          <>
            {run.kind === "training" ? "Training of " : ""}
            <Link href={`/${run.model}`}>{run.model}</Link>
            {deployment ? (
              <>
                {" "}
                via deployment <Link href={`/deployments/${deployment}`}>{deployment}</Link>
              </>
            ) : null}{" "}
            · created <Time iso={run.created_at} />
          </>
        }
      >
        {run.kind === "training" ? "Training" : "Prediction"} <code>{run.id}</code>
      </PageTitle>
      <div class="status-row" aria-live="polite">
        <StatusBadge status={run.status} />
        {!terminal ? (
          <button type="button" class="danger" onClick={cancel} disabled={canceling}>
            {canceling ? "Canceling…" : "Cancel"}
          </button>
        ) : null}
        {owner && name && run.kind === "prediction" && !deployment ? (
          <Link
            class="button ghost"
            href={`/${run.model}?input=${encodeURIComponent(JSON.stringify(run.input))}`}
          >
            Tweak it
          </Link>
        ) : null}
      </div>
      <ErrorBox error={cancelError} title="Could not cancel" />
      <div class="share">
        <label for="share-url">Share this run</label>
        <div class="secret-row">
          <input
            id="share-url"
            type="text"
            readOnly
            value={shareUrl}
            onFocus={(e) => e.currentTarget.select()}
          />
          <CopyButton text={shareUrl} label="Copy link" />
        </div>
      </div>
      <div class="prediction-grid">
        <section aria-labelledby="output-heading" class="panel">
          <h2 id="output-heading">Output</h2>
          {run.error ? (
            <div class="error-box" role="alert">
              <strong>Error: </strong>
              <span data-testid="prediction-error">{run.error}</span>
            </div>
          ) : null}
          <OutputView run={run} streamed={streamed} display={display} />
        </section>
        <section aria-labelledby="input-heading" class="panel">
          <h2 id="input-heading">Input</h2>
          <pre class="json">{JSON.stringify(run.input, null, 2)}</pre>
          <h2 id="metrics-heading">Metrics</h2>
          <Metrics run={run} />
        </section>
      </div>
      <section aria-labelledby="logs-heading" class="panel">
        <h2 id="logs-heading">Logs</h2>
        <pre class="logs" data-testid="logs">
          {logs || <span class="muted">No logs yet.</span>}
        </pre>
      </section>
      {target && run.kind === "prediction" ? <CodePanel target={target} input={run.input} /> : null}
    </div>
  );
}

function Metrics({ run }: { run: Run }) {
  const rows: [string, string][] = [
    ["Created", new Date(run.created_at).toLocaleString()],
    ["Started", run.started_at ? new Date(run.started_at).toLocaleString() : "—"],
    ["Completed", run.completed_at ? new Date(run.completed_at).toLocaleString() : "—"],
  ];
  for (const [key, value] of Object.entries(run.metrics ?? {})) {
    if (value === undefined || value === null) continue;
    const label = key.replace(/_/g, " ");
    rows.push([
      label,
      typeof value === "number" && key.endsWith("_time") ? `${value.toFixed(3)} s` : String(value),
    ]);
  }
  return (
    <dl class="metrics">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function isFileString(value: unknown): value is string {
  return typeof value === "string" && (/^data:[^,]*,/.test(value) || /^https?:\/\/\S+$/.test(value));
}

function OutputView({
  run,
  streamed,
  display,
}: {
  run: Run;
  streamed: string[];
  display: "concatenate" | "other";
}) {
  const output = run.output;
  const chunks =
    Array.isArray(output) && output.every((v) => typeof v === "string") ? (output as string[]) : undefined;
  const looksLikeText = display === "concatenate" || (chunks !== undefined && !chunks.some(isFileString));
  if (looksLikeText && (chunks || streamed.length > 0)) {
    const text = (chunks && chunks.length >= streamed.length ? chunks : streamed).join("");
    return (
      <pre class="output-text" data-testid="output-text" aria-live="polite">
        {text}
        {!TERMINAL.has(run.status) ? <span class="caret" aria-hidden="true" /> : null}
      </pre>
    );
  }
  if (output === null || output === undefined) {
    return <p class="muted">{TERMINAL.has(run.status) ? "No output." : "Waiting for output…"}</p>;
  }
  if (typeof output === "string") {
    if (isFileString(output)) return <FileView url={output} index={0} />;
    return (
      <pre class="output-text" data-testid="output-text">
        {output}
      </pre>
    );
  }
  if (Array.isArray(output) && output.length > 0 && output.every(isFileString)) {
    return (
      <div class="file-list">
        {output.map((url, i) => (
          <FileView key={url} url={url} index={i} />
        ))}
      </div>
    );
  }
  return (
    <pre class="json" data-testid="output-json">
      {JSON.stringify(output, null, 2)}
    </pre>
  );
}

const EXTENSIONS: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  svg: "image/svg+xml",
  wav: "audio/wav",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  flac: "audio/flac",
  mp4: "video/mp4",
  webm: "video/webm",
  txt: "text/plain",
  json: "application/json",
};

function mimeOf(url: string): string {
  const data = /^data:([^;,]*)/.exec(url);
  if (data) return data[1] || "text/plain";
  try {
    const ext = new URL(url).pathname.split(".").pop()?.toLowerCase() ?? "";
    return EXTENSIONS[ext] ?? "application/octet-stream";
  } catch {
    return "application/octet-stream";
  }
}

function extensionOf(mime: string): string {
  const found = Object.entries(EXTENSIONS).find(([, m]) => m === mime);
  return found ? found[0] : "bin";
}

/** Decodes a data: URI into a Blob without fetch (the CSP's connect-src does not allow data:). */
function dataUriToBlob(uri: string): Blob {
  const comma = uri.indexOf(",");
  const header = uri.slice(5, comma);
  const body = uri.slice(comma + 1);
  const mime = header.split(";")[0] || "text/plain";
  if (header.endsWith(";base64")) {
    const binary = atob(body);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new Blob([bytes], { type: mime });
  }
  return new Blob([decodeURIComponent(body)], { type: mime });
}

function FileView({ url, index }: { url: string; index: number }) {
  const mime = mimeOf(url);
  const [href, setHref] = useState<string | undefined>(undefined);
  useEffect(() => {
    if (!url.startsWith("data:")) {
      setHref(localUrl(url));
      return;
    }
    const objectUrl = URL.createObjectURL(dataUriToBlob(url));
    setHref(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [url]);
  let name = `output${index > 0 ? `-${index}` : ""}.${extensionOf(mime)}`;
  if (!url.startsWith("data:")) {
    try {
      const last = new URL(url).pathname.split("/").pop() ?? "";
      if (last.includes(".")) name = decodeURIComponent(last);
    } catch {
      // keep the generated name
    }
  }
  const src = url.startsWith("data:") ? url : localUrl(url);
  return (
    <figure class="file-view">
      {mime.startsWith("image/") ? <img src={src} alt={`Output ${index + 1}`} /> : null}
      {mime.startsWith("audio/") ? (
        <audio controls src={src}>
          <track kind="captions" />
        </audio>
      ) : null}
      {mime.startsWith("video/") ? (
        <video controls src={src}>
          <track kind="captions" />
        </video>
      ) : null}
      <figcaption>
        <span class="muted small-text">{mime}</span>{" "}
        {href ? (
          <a class="button small" href={href} download={name}>
            Download {name}
          </a>
        ) : null}
      </figcaption>
    </figure>
  );
}
