import type { ServerResponse } from "node:http";

/** How far an SSE client may fall behind before its stream is ended with a `reconnect` event. */
export interface StreamLagLimits {
  /**
   * Bytes held for the client while its socket has not drained: queued here (UTF-16 code units) and in
   * the socket (what the kernel has not taken).
   */
  maxLagBytes: number;
  /** Milliseconds the socket may go without draining once a write was refused. */
  maxStallMs: number;
}

/** After a cut, the final event gets at least this long to leave before the socket is destroyed. */
const CUT_GRACE_MS = 5_000;

/**
 * An SSE response's writes. The events written in one go (a runner's batch of tokens arrives as one
 * message) leave as one chunk on the next tick: each `res.write` of a chunked response is a chunk header,
 * a socket write and a wake-up of the client, and a corked burst of small writes costs as much again in
 * `writev` building its buffers.
 *
 * Backpressure: once `res.write` returns false, events wait here (in order, whole) until `drain`, and go
 * as one chunk then. A client that falls behind by more than `maxLagBytes` (held here and in the
 * socket), or does not drain for `maxStallMs`, is cut: what waits is dropped, a final event asks it to
 * reconnect with Last-Event-ID (the id of the last event that reached the socket), and the socket is
 * destroyed if what it holds has not left by the stall bound. One timer per stream at most, re-armed
 * rather than reallocated per stall.
 */
export class EventWriter {
  private pending = "";
  /** The id of the last event in `pending`, and of the last one handed to the socket. */
  private pendingId: string;
  private sentId: string;
  /** `res.write` refused the last chunk and `drain` has not come yet. */
  private blocked = false;
  private blockedSince = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  private ended = false;
  /** Called once when the client falls too far behind; it should end the stream with `cut`. */
  onLag: (() => void) | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly limits: StreamLagLimits,
    startId: string,
  ) {
    this.pendingId = startId;
    this.sentId = startId;
    res.once("close", this.dispose);
  }

  /** The id of the last event that reached the socket: where a reconnecting client resumes. */
  get lastSentId(): string {
    return this.sentId;
  }

  /** Whether the client is keeping up (nothing waits for a drain). */
  get idle(): boolean {
    return !this.blocked && this.pending === "";
  }

  write(text: string, id?: string): void {
    if (this.ended) return;
    if (this.pending === "") {
      // A single event larger than the bound is always taken into an empty queue.
      if (!this.blocked) process.nextTick(this.flush);
    } else if (
      this.blocked &&
      this.pending.length + text.length + this.res.writableLength > this.limits.maxLagBytes
    ) {
      this.lag();
      return;
    }
    this.pending += text;
    if (id !== undefined) this.pendingId = id;
  }

  readonly flush = (): void => {
    if (this.pending === "" || this.blocked) return;
    const text = this.pending;
    this.pending = "";
    this.sentId = this.pendingId;
    // After the client left (or the stream ended) there is no one to write to.
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.res.write(text)) this.block();
  };

  /**
   * Ends the stream after everything queued. What the socket still holds then must leave without a
   * stall of `maxStallMs` (a response that has ended emits no `drain`: it has until it finishes).
   */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const text = this.pending;
    this.pending = "";
    if (this.res.writableEnded || this.res.destroyed) return;
    if (text !== "") this.sentId = this.pendingId;
    this.res.end(text);
    if (this.res.writableLength > 0) this.block();
  }

  /** Ends the stream now with `finalEvent`, dropping what waits: the client resumes from `lastSentId`. */
  cut(finalEvent: string): void {
    if (this.ended) return;
    this.ended = true;
    this.pending = "";
    if (this.res.writableEnded || this.res.destroyed) return;
    this.res.end(finalEvent);
    if (this.res.writableLength === 0) return;
    // What the socket still holds (a slow reader's last chunks, then the final event) may take until the
    // stall bound from when the socket stopped draining, and a few seconds at least; then it goes.
    const now = Date.now();
    const since = this.blocked ? this.blockedSince : now;
    const deadline = Math.max(
      since + this.limits.maxStallMs,
      now + Math.min(CUT_GRACE_MS, this.limits.maxStallMs),
    );
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(this.destroy, deadline - now);
    this.stallTimer.unref();
  }

  private block(): void {
    if (!this.blocked) {
      this.blocked = true;
      this.blockedSince = Date.now();
      if (!this.ended) this.res.once("drain", this.onDrain);
    }
    if (this.stallTimer === undefined) {
      this.stallTimer = setTimeout(this.checkStall, this.limits.maxStallMs);
      this.stallTimer.unref();
    }
  }

  private readonly onDrain = (): void => {
    this.blocked = false;
    if (!this.ended) this.flush();
  };

  private readonly checkStall = (): void => {
    this.stallTimer = undefined;
    if (!this.blocked) return;
    const waited = Date.now() - this.blockedSince;
    if (waited < this.limits.maxStallMs) {
      this.stallTimer = setTimeout(this.checkStall, this.limits.maxStallMs - waited);
      this.stallTimer.unref();
    } else if (this.ended) this.destroy();
    else this.lag();
  };

  private lag(): void {
    const onLag = this.onLag;
    this.onLag = undefined;
    if (onLag) onLag();
    else this.destroy();
  }

  private readonly destroy = (): void => {
    this.res.destroy();
  };

  /** The response closed: release what it held. */
  private readonly dispose = (): void => {
    this.ended = true;
    this.pending = "";
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.res.off("drain", this.onDrain);
  };
}
