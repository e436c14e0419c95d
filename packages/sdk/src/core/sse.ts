/** One server-sent event, as the `replicate` package shapes it. `toString()` gives the text of `output` events. */
export class ServerSentEvent<TData = string> {
  constructor(
    readonly event: string,
    readonly data: TData,
    readonly id?: string,
    readonly retry?: number,
  ) {}

  toString(): string {
    return this.event === "output" ? String(this.data) : "";
  }
}

/** A parsed event straight off the wire, before the SDK interprets it. */
export interface RawServerSentEvent {
  event: string;
  data: string;
  /** The last event id seen so far (the SSE spec carries it forward to later events). */
  id: string | undefined;
  retry: number | undefined;
}

/**
 * Incremental parser for the `text/event-stream` format (WHATWG HTML §9.2): feed it decoded text chunks as
 * they arrive, in any split, and it returns the events completed so far. Handles CRLF/CR/LF line ends, a
 * leading BOM, comments, multi-line `data`, `id` (ignored if it contains NUL) and `retry`.
 */
export class SSEParser {
  private buffer = "";
  private data: string[] = [];
  private eventType = "";
  private sawData = false;
  private firstChunk = true;
  private trailingCarriageReturn = false;
  lastEventId: string | undefined;
  retry: number | undefined;

  feed(chunk: string): RawServerSentEvent[] {
    let text = chunk;
    if (this.firstChunk && text.length > 0) {
      this.firstChunk = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A CR at the end of the previous chunk may be the first half of a CRLF.
    if (this.trailingCarriageReturn && text.startsWith("\n")) text = text.slice(1);
    this.trailingCarriageReturn = false;
    this.buffer += text;
    const events: RawServerSentEvent[] = [];
    let start = 0;
    for (let index = 0; index < this.buffer.length; index++) {
      const char = this.buffer[index];
      if (char !== "\n" && char !== "\r") continue;
      const line = this.buffer.slice(start, index);
      if (char === "\r") {
        if (index + 1 === this.buffer.length) this.trailingCarriageReturn = true;
        else if (this.buffer[index + 1] === "\n") index++;
      }
      start = index + 1;
      const event = this.processLine(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** Call at end of stream: a final event without its blank line is discarded, as the spec says. */
  end(): void {
    this.buffer = "";
    this.resetEvent();
  }

  private processLine(line: string): RawServerSentEvent | undefined {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data.push(value);
        this.sawData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  private dispatch(): RawServerSentEvent | undefined {
    if (!this.sawData) {
      this.resetEvent();
      return undefined;
    }
    const event: RawServerSentEvent = {
      event: this.eventType || "message",
      data: this.data.join("\n"),
      id: this.lastEventId,
      retry: this.retry,
    };
    this.resetEvent();
    return event;
  }

  private resetEvent(): void {
    this.data = [];
    this.eventType = "";
    this.sawData = false;
  }
}

/**
 * Parses a whole byte stream of SSE into events. When `signal` aborts, the stream is canceled and iteration
 * ends (even with a fetch that ignores the signal once headers have arrived).
 */
export async function* parseSSEStream(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<RawServerSentEvent> {
  const parser = new SSEParser();
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const onAbort = () => {
    reader.cancel(signal?.reason).catch(() => {});
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const event of parser.feed(decoder.decode(value, { stream: true }))) yield event;
    }
    for (const event of parser.feed(decoder.decode())) yield event;
    parser.end();
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}
