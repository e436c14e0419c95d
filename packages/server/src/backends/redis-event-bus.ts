import { Redis } from "ioredis";
import type { EventBus, PredictionEvent } from "./types.js";

export interface RedisEventBusOptions {
  /** `redis://…` */
  url: string;
  /** Prepended to every channel, so several deployments can share a Redis. Default `replicant`. */
  prefix?: string;
}

type Listener = (event: PredictionEvent) => void;

/**
 * The event bus on Redis pub/sub: one publishing connection and one subscriber connection per
 * process, every channel multiplexed on them. Delivery is at most once, like the in-process bus:
 * late subscribers merge the stored prefix of a prediction with live events (see PredictionEvent).
 */
export class RedisEventBus implements EventBus {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Pending SUBSCRIBE/UNSUBSCRIBE per channel, so they reach Redis in call order. */
  private readonly changes = new Map<string, Promise<unknown>>();

  constructor(options: RedisEventBusOptions) {
    this.prefix = `${options.prefix ?? "replicant"}:bus:`;
    this.publisher = new Redis(options.url, { maxRetriesPerRequest: 2, lazyConnect: false });
    // The subscriber resubscribes by itself after a reconnect (ioredis autoResubscribe).
    this.subscriber = new Redis(options.url, { maxRetriesPerRequest: null, lazyConnect: false });
    // Errors are retried by ioredis; without listeners they would be printed as unhandled.
    this.publisher.on("error", () => undefined);
    this.subscriber.on("error", () => undefined);
    this.subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) =>
      this.deliver(channel.toString("utf8"), message),
    );
  }

  private deliver(redisChannel: string, message: Buffer): void {
    const channel = redisChannel.slice(this.prefix.length);
    const listeners = this.listeners.get(channel);
    if (listeners === undefined || listeners.size === 0) return;
    let event: PredictionEvent;
    try {
      event = JSON.parse(message.toString("utf8")) as PredictionEvent;
    } catch {
      return;
    }
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch {
        // One failing listener must not starve the others.
      }
    }
  }

  async publish(channel: string, event: PredictionEvent): Promise<void> {
    await this.publisher.publish(this.prefix + channel, JSON.stringify(event));
  }

  private change(channel: string, op: () => Promise<unknown>): Promise<unknown> {
    const previous = this.changes.get(channel) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(op);
    this.changes.set(channel, next);
    void next
      .finally(() => {
        if (this.changes.get(channel) === next) this.changes.delete(channel);
      })
      .catch(() => undefined);
    return next;
  }

  async subscribe(channel: string, listener: Listener): Promise<() => void> {
    let set = this.listeners.get(channel);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    const first = set.size === 0;
    // Wrapped, so the same function subscribed twice is two subscriptions.
    const own: Listener = (event) => listener(event);
    set.add(own);
    if (first) await this.change(channel, () => this.subscriber.subscribe(this.prefix + channel));
    else await this.changes.get(channel);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const current = this.listeners.get(channel);
      if (current === undefined) return;
      current.delete(own);
      if (current.size > 0) return;
      this.listeners.delete(channel);
      void this.change(channel, async () => {
        // Someone may have subscribed again meanwhile.
        if (this.listeners.has(channel)) return;
        await this.subscriber.unsubscribe(this.prefix + channel);
      }).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.allSettled([...this.changes.values()]);
    this.subscriber.disconnect();
    if (this.publisher.status === "ready") await this.publisher.quit().catch(() => undefined);
    this.publisher.disconnect();
  }
}
