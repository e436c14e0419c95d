import type { EventBus, PredictionEvent } from "./types.js";

type Listener = (event: PredictionEvent) => void;
type Subscription = { readonly listener: Listener };

const DONE: Promise<void> = Promise.resolve();

/** In-process pub/sub: listeners are called synchronously, in publish order. */
export class MemoryEventBus implements EventBus {
  // Copy-on-write arrays: publish, the hot path (one call per streamed token), iterates without
  // copying, and a listener added or removed during delivery takes effect from the next event.
  private readonly channels = new Map<string, readonly Subscription[]>();
  private closed = false;

  /** `onListenerError` hears about listeners that throw; they never stop delivery to the others. */
  constructor(private readonly onListenerError?: (error: unknown, channel: string) => void) {}

  publish(channel: string, event: PredictionEvent): Promise<void> {
    const listeners = this.channels.get(channel);
    if (listeners === undefined) return DONE;
    for (const subscription of listeners) {
      try {
        subscription.listener(event);
      } catch (error) {
        this.onListenerError?.(error, channel);
      }
    }
    return DONE;
  }

  async subscribe(channel: string, listener: Listener): Promise<() => void> {
    if (this.closed) return () => {};
    // A fresh object, so that the same function subscribed twice gets two independent subscriptions.
    const subscription: Subscription = { listener };
    this.channels.set(channel, [...(this.channels.get(channel) ?? []), subscription]);
    return () => {
      const current = this.channels.get(channel);
      if (current === undefined || !current.includes(subscription)) return;
      const rest = current.filter((each) => each !== subscription);
      if (rest.length === 0) this.channels.delete(channel);
      else this.channels.set(channel, rest);
    };
  }

  /** Number of channels with at least one listener (for leak checks). */
  get channelCount(): number {
    return this.channels.size;
  }

  /** Listeners of one channel (for leak checks). */
  listenerCount(channel: string): number {
    return this.channels.get(channel)?.length ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
  }
}
