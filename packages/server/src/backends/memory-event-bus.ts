import type { EventBus, PredictionEvent } from "./types.js";

type Listener = (event: PredictionEvent) => void;

/** In-process pub/sub: listeners are called synchronously, in publish order. */
export class MemoryEventBus implements EventBus {
  private readonly channels = new Map<string, Set<Listener>>();
  private closed = false;

  /** `onListenerError` hears about listeners that throw; they never stop delivery to the others. */
  constructor(private readonly onListenerError?: (error: unknown, channel: string) => void) {}

  async publish(channel: string, event: PredictionEvent): Promise<void> {
    const listeners = this.channels.get(channel);
    if (listeners === undefined) return;
    // A snapshot: listeners added or removed during delivery take effect from the next event.
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError?.(error, channel);
      }
    }
  }

  async subscribe(channel: string, listener: Listener): Promise<() => void> {
    if (this.closed) return () => {};
    // Wrapped so that the same function subscribed twice gets two independent subscriptions.
    const subscription: Listener = (event) => listener(event);
    let listeners = this.channels.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.channels.set(channel, listeners);
    }
    listeners.add(subscription);
    return () => {
      const current = this.channels.get(channel);
      if (current === undefined || !current.delete(subscription)) return;
      if (current.size === 0) this.channels.delete(channel);
    };
  }

  /** Number of channels with at least one listener (for leak checks). */
  get channelCount(): number {
    return this.channels.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
  }
}
