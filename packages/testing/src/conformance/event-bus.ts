import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EventBus, PredictionEvent } from "@replicant/server";
import { sleep, uniqueId, waitFor } from "./fixtures.js";

export type EventBusFactory = () => Promise<{ bus: EventBus; cleanup(): Promise<void> }>;

function outputEvents(count: number): PredictionEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    type: "output",
    index,
    value: { token: `t${index}` },
  }));
}

/**
 * The EventBus contract. Delivery may be asynchronous (a network bus), so the suite waits for events
 * rather than expecting them synchronously.
 */
export function eventBusConformance(name: string, factory: EventBusFactory): void {
  async function withBus(body: (bus: EventBus, channel: string) => Promise<void>): Promise<void> {
    const { bus, cleanup } = await factory();
    try {
      await body(bus, uniqueId("prediction-"));
    } finally {
      await cleanup();
    }
  }

  describe(`EventBus conformance: ${name}`, () => {
    it("delivers every event of a channel, in publish order, to every subscriber", () =>
      withBus(async (bus, channel) => {
        const a: PredictionEvent[] = [];
        const b: PredictionEvent[] = [];
        const stopA = await bus.subscribe(channel, (event) => a.push(event));
        const stopB = await bus.subscribe(channel, (event) => b.push(event));
        const events: PredictionEvent[] = [
          { type: "status", status: "processing" },
          { type: "logs", offset: 0, text: "hello\n" },
          ...outputEvents(200),
          { type: "logs", offset: 6, text: "bye\n" },
          { type: "done", status: "succeeded", error: null },
        ];
        for (const event of events) await bus.publish(channel, event);
        await waitFor(() => a.length >= events.length && b.length >= events.length, 5000, "all events");
        assert.deepEqual(a, events);
        assert.deepEqual(b, events);
        stopA();
        stopB();
      }));

    it("delivers events published without waiting, still in order", () =>
      withBus(async (bus, channel) => {
        const got: PredictionEvent[] = [];
        const stop = await bus.subscribe(channel, (event) => got.push(event));
        const events = outputEvents(100);
        await Promise.all(events.map((event) => bus.publish(channel, event)));
        await waitFor(() => got.length >= events.length, 5000, "all events");
        assert.deepEqual(got, events);
        stop();
      }));

    it("keeps channels apart and does not replay earlier events", () =>
      withBus(async (bus, channel) => {
        const other = `${channel}-other`;
        await bus.publish(channel, { type: "status", status: "starting" });
        const got: PredictionEvent[] = [];
        const otherGot: PredictionEvent[] = [];
        const stop = await bus.subscribe(channel, (event) => got.push(event));
        const stopOther = await bus.subscribe(other, (event) => otherGot.push(event));
        await bus.publish(other, { type: "status", status: "processing" });
        await bus.publish(channel, { type: "done", status: "canceled", error: null });
        await waitFor(() => got.length >= 1 && otherGot.length >= 1, 5000, "events on both channels");
        await sleep(20);
        assert.deepEqual(got, [{ type: "done", status: "canceled", error: null }]);
        assert.deepEqual(otherGot, [{ type: "status", status: "processing" }]);
        stop();
        stopOther();
      }));

    it("stops delivering after unsubscribe, which is idempotent", () =>
      withBus(async (bus, channel) => {
        const stopped: PredictionEvent[] = [];
        const kept: PredictionEvent[] = [];
        const stop = await bus.subscribe(channel, (event) => stopped.push(event));
        const stopKept = await bus.subscribe(channel, (event) => kept.push(event));
        await bus.publish(channel, { type: "status", status: "processing" });
        await waitFor(() => stopped.length === 1 && kept.length === 1, 5000, "the first event");
        stop();
        stop();
        await bus.publish(channel, { type: "logs", offset: 0, text: "after" });
        await bus.publish(channel, { type: "done", status: "succeeded", error: null });
        await waitFor(() => kept.length === 3, 5000, "events for the remaining subscriber");
        await sleep(20);
        assert.equal(stopped.length, 1, "an unsubscribed listener got events");
        stopKept();
        stopKept();
        // Subscribing again after everyone left works.
        const again: PredictionEvent[] = [];
        const stopAgain = await bus.subscribe(channel, (event) => again.push(event));
        await bus.publish(channel, { type: "status", status: "starting" });
        await waitFor(() => again.length === 1, 5000, "an event after resubscribing");
        stopAgain();
      }));

    it("keeps delivering to other listeners when one throws", () =>
      withBus(async (bus, channel) => {
        const got: PredictionEvent[] = [];
        const stopThrowing = await bus.subscribe(channel, () => {
          throw new Error("listener failure");
        });
        const stop = await bus.subscribe(channel, (event) => got.push(event));
        const events = outputEvents(5);
        for (const event of events) await bus.publish(channel, event);
        await waitFor(() => got.length >= events.length, 5000, "events despite a throwing listener");
        assert.deepEqual(got, events);
        stopThrowing();
        stop();
      }));
  });
}
