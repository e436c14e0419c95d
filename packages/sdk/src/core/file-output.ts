import { anySignal } from "../internal/any-signal.js";
import { base64ToBytes } from "../internal/base64.js";
import { APIConnectionError, APIError, APITimeoutError, APIUserAbortError } from "./errors.js";

/** The shape of `fetch` the SDK needs; any WHATWG-compatible fetch fits. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A file's address. Call it for a `URL` object, as with the `replicate` package (`output.url()`), or use it as a
 * string: `String(output.url)`, `` `${output.url}` ``, `output.url.href`, and JSON all give the URL text.
 */
export type FileUrl = (() => URL) & {
  readonly href: string;
  toString(): string;
  toJSON(): string;
};

export interface FileOutputOptions {
  /** Used to download `http(s):` URLs. Defaults to `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Extra headers for the download (the client adds its token only for URLs on its own API origin). */
  headers?: Record<string, string>;
  /** Aborts a download in progress. */
  signal?: AbortSignal;
  /**
   * Milliseconds to wait for the download to start (the response headers), then for each next chunk of the
   * body while someone reads it; a stalled download fails with `APITimeoutError` instead of hanging. A large
   * file that keeps arriving never times out. 0 or `Infinity`: no limit (the default for a bare
   * `FileOutput`; a client passes its own `timeout`).
   */
  timeout?: number;
}

/** A download's timeout and the controller (its fetch listens to it) that ends the download when one passes. */
interface Stall {
  controller: AbortController;
  timeout: number;
}

interface DownloadState {
  href: string;
  options: FileOutputOptions;
  blob: Promise<Blob> | undefined;
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** The stream's download deadline per read, once it has started. */
  stall: Stall | undefined;
  streamStarted: boolean;
  contentType: string | undefined;
}

/**
 * FileOutput's base class until its first instance: then `ReadableStream`. Reading that global makes Node load
 * its web streams, ~4 ms of every import of the SDK (R6 in docs/performance.md) though most programs never
 * make a FileOutput; a class's `super()` and prototype chain are looked up when used, so every instance is
 * a real ReadableStream.
 */
const StreamBase = function ReadableStreamOnFirstUse() {} as unknown as new (
  source: UnderlyingDefaultSource<Uint8Array>,
  strategy: QueuingStrategy<Uint8Array>,
) => ReadableStream<Uint8Array>;

function useReadableStreamBase(): void {
  if (Object.getPrototypeOf(FileOutput) === ReadableStream) return;
  Object.setPrototypeOf(FileOutput, ReadableStream);
  Object.setPrototypeOf(FileOutput.prototype, ReadableStream.prototype);
}

/**
 * A file produced by a model. Nothing is downloaded until you read it: `blob()`, `text()`, `arrayBuffer()`,
 * `bytes()`, reading it as a Web `ReadableStream` (it is one), or `for await` over its chunks. `blob()` caches,
 * so reading twice downloads once. `toJSON()` and `toString()` give the URL, so `JSON.stringify(output)` and
 * template strings show where the file is. `data:` URIs are decoded locally, with no request.
 */
export class FileOutput extends StreamBase {
  readonly url: FileUrl;
  readonly #state: DownloadState;

  constructor(url: string, options: FileOutputOptions = {}) {
    useReadableStreamBase();
    const state: DownloadState = {
      href: url,
      options,
      blob: undefined,
      reader: undefined,
      stall: undefined,
      streamStarted: false,
      contentType: undefined,
    };
    super(
      {
        async pull(controller) {
          if (!state.reader) {
            state.streamStarted = true;
            if (state.blob) state.reader = (await state.blob).stream().getReader();
            else {
              const { body, stall } = await openBody(state);
              state.reader = body.getReader();
              state.stall = stall;
            }
          }
          const { done, value } = await readWithin(state, state.reader, state.stall);
          if (done) controller.close();
          else controller.enqueue(value);
        },
        async cancel(reason) {
          await state.reader?.cancel(reason);
        },
      },
      // A high-water mark of 0 keeps the stream from pulling (and downloading) before anyone reads it.
      { highWaterMark: 0 },
    );
    this.#state = state;
    this.url = makeFileUrl(url);
  }

  /** The URL as text (an `https:` URL or a `data:` URI). */
  get href(): string {
    return this.#state.href;
  }

  /** The file's media type, once it is known (after a read, or at once for `data:` URIs). */
  get contentType(): string | undefined {
    if (this.#state.contentType === undefined && this.#state.href.startsWith("data:")) {
      this.#state.contentType = parseDataUri(this.#state.href).contentType;
    }
    return this.#state.contentType;
  }

  /** Downloads the file (once) and returns it as a Blob typed with the response's Content-Type. */
  blob(): Promise<Blob> {
    const state = this.#state;
    if (!state.blob) {
      state.blob = downloadBlob(state);
      // A failed download should be retryable by the next call.
      state.blob.catch(() => {
        state.blob = undefined;
      });
    }
    return state.blob;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.blob()).arrayBuffer();
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }

  async text(): Promise<string> {
    return (await this.blob()).text();
  }

  /** Writes the file to `path` (Node, Bun and Deno only; loaded on demand so the core stays portable). */
  async save(path: string): Promise<void> {
    const { writeBytesToPath } = await import("../node/paths.js");
    await writeBytesToPath(path, await this.bytes());
  }

  /** Iterates the file's bytes chunk by chunk, in runtimes whose ReadableStream lacks async iteration too. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    const reader = this.getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }

  toJSON(): string {
    return this.#state.href;
  }

  override toString(): string {
    return this.#state.href;
  }

  get [Symbol.toStringTag](): string {
    return "FileOutput";
  }

  /** How Node's console.log shows it: `FileOutput('https://...')`, as the replicate README prints. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    const href = this.#state.href;
    return `FileOutput('${href.length > 200 ? `${href.slice(0, 200)}...` : href}')`;
  }
}

/** Parses a `data:` URI into its bytes and media type. */
export function parseDataUri(uri: string): { contentType: string; bytes: Uint8Array<ArrayBuffer> } {
  const comma = uri.indexOf(",");
  if (!uri.startsWith("data:") || comma === -1) throw new TypeError("Invalid data URI");
  const meta = uri.slice(5, comma);
  const payload = uri.slice(comma + 1);
  const parts = meta.split(";");
  const isBase64 = parts[parts.length - 1]?.toLowerCase() === "base64";
  if (isBase64) parts.pop();
  const contentType = parts.join(";") || "text/plain;charset=US-ASCII";
  const bytes = isBase64 ? base64ToBytes(decodeURIComponent(payload)) : percentDecode(payload);
  return { contentType, bytes };
}

function percentDecode(text: string): Uint8Array<ArrayBuffer> {
  const encoded = new TextEncoder().encode(text);
  const out: number[] = [];
  for (let index = 0; index < encoded.length; index++) {
    const byte = encoded[index]!;
    if (byte === 0x25 && index + 2 < encoded.length) {
      const hex = String.fromCharCode(encoded[index + 1]!, encoded[index + 2]!);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        out.push(Number.parseInt(hex, 16));
        index += 2;
        continue;
      }
    }
    out.push(byte);
  }
  return Uint8Array.from(out);
}

function makeFileUrl(href: string): FileUrl {
  const accessor = () => new URL(href);
  Object.defineProperties(accessor, {
    href: { value: href, enumerable: true },
    toString: { value: () => href },
    toJSON: { value: () => href },
    [Symbol.toPrimitive]: { value: () => href },
  });
  return accessor as FileUrl;
}

async function openBody(
  state: DownloadState,
): Promise<{ body: ReadableStream<Uint8Array>; stall: Stall | undefined }> {
  if (state.href.startsWith("data:")) {
    const { contentType, bytes } = parseDataUri(state.href);
    state.contentType = contentType;
    return { body: new Blob([bytes], { type: contentType }).stream(), stall: undefined };
  }
  const { response, stall } = await fetchFile(state);
  return { body: response.body ?? new Blob([]).stream(), stall };
}

async function downloadBlob(state: DownloadState): Promise<Blob> {
  if (state.href.startsWith("data:")) {
    const { contentType, bytes } = parseDataUri(state.href);
    state.contentType = contentType;
    return new Blob([bytes], { type: contentType });
  }
  const { response, stall } = await fetchFile(state);
  const chunks: Uint8Array[] = [];
  if (response.body) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await readWithin(state, reader, stall);
      if (done) break;
      chunks.push(value);
    }
  }
  return new Blob(chunks as BlobPart[], { type: state.contentType ?? "application/octet-stream" });
}

function timeoutOf(state: DownloadState): number | undefined {
  const timeout = state.options.timeout;
  return timeout !== undefined && timeout > 0 && Number.isFinite(timeout) ? timeout : undefined;
}

/**
 * One read of a download's body. With a `stall`, a read that outlasts its timeout ends the download and
 * fails with APITimeoutError, even if the fetch in use ignores its signal.
 */
async function readWithin(
  state: DownloadState,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  stall: Stall | undefined,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const request = { method: "GET", url: state.href };
  try {
    return await (stall ? withinTimeout(reader.read(), stall, request) : reader.read());
  } catch (error) {
    if (error instanceof APITimeoutError) {
      reader.cancel().catch(() => {});
      throw error;
    }
    if (state.options.signal?.aborted) throw new APIUserAbortError(state.options.signal.reason);
    throw new APIConnectionError(request, { cause: error });
  }
}

/** `work`, or APITimeoutError (and the download aborted) if it takes longer than the stall's timeout. */
function withinTimeout<T>(
  work: Promise<T>,
  stall: Stall,
  request: { method: string; url: string },
): Promise<T> {
  // The losing promise's rejection is expected once the download is aborted: keep it from going unhandled.
  work.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Rejected before the abort, whose own rejection of `work` would otherwise win the race.
      reject(new APITimeoutError(request, stall.timeout));
      stall.controller.abort();
    }, stall.timeout);
  });
  return Promise.race([work, timedOut]).finally(() => clearTimeout(timer));
}

async function fetchFile(state: DownloadState): Promise<{ response: Response; stall: Stall | undefined }> {
  const fetchFunction = state.options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const request = { method: "GET", url: state.href };
  const timeout = timeoutOf(state);
  const userSignal = state.options.signal;
  const stall = timeout === undefined ? undefined : { controller: new AbortController(), timeout };
  let response: Response;
  try {
    const init: RequestInit = { method: "GET", headers: state.options.headers ?? {} };
    const stallSignal = stall?.controller.signal;
    const signal =
      stallSignal && userSignal ? anySignal([userSignal, stallSignal]) : (stallSignal ?? userSignal);
    if (signal) init.signal = signal;
    const fetching = fetchFunction(state.href, init);
    response = await (stall ? withinTimeout(fetching, stall, request) : fetching);
  } catch (error) {
    if (error instanceof APITimeoutError) throw error;
    if (userSignal?.aborted) throw new APIUserAbortError(userSignal.reason);
    throw new APIConnectionError(request, { cause: error });
  }
  if (!response.ok) {
    const body = await response.text().catch(() => "");
    throw APIError.fromResponse(request, response, body);
  }
  state.contentType = response.headers.get("content-type") ?? undefined;
  return { response, stall };
}
