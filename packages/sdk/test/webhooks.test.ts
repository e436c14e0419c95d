import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { signWebhook, validateWebhook, verifyWebhook, WebhookVerificationError } from "../src/index.js";

// Vectors computed independently with node:crypto, the way Replicate (Standard Webhooks) signs.
const keyBytes = randomBytes(24);
const secret = `whsec_${keyBytes.toString("base64")}`;
const id = "msg_2Lh9KRb0pzN4LePd3XiA4R2Dq4B";
const body = JSON.stringify({ id: "p1", status: "succeeded", output: "hello world" });

function nodeSignature(timestamp: number, payload = body, key = keyBytes): string {
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${payload}`).digest("base64")}`;
}

const now = () => Math.floor(Date.now() / 1000);

describe("verifyWebhook", () => {
  test("accepts a valid signature from raw parts and returns the payload", async () => {
    const timestamp = now();
    const payload = await verifyWebhook(
      { id, timestamp: String(timestamp), signature: nodeSignature(timestamp), body },
      secret,
    );
    assert.deepEqual(payload, JSON.parse(body));
  });

  test("accepts a Request and Node-style header records", async () => {
    const timestamp = now();
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": nodeSignature(timestamp),
    };
    const request = new Request("https://my.app/webhooks", { method: "POST", headers, body });
    assert.equal((await verifyWebhook(request, secret)).id, "p1");
    const upperCased = Object.fromEntries(
      Object.entries(headers).map(([key, value]) => [key.toUpperCase(), value]),
    );
    assert.equal((await verifyWebhook({ headers: upperCased, body: Buffer.from(body) }, secret)).id, "p1");
  });

  test("any matching entry of a multi-signature header is enough", async () => {
    const timestamp = now();
    const other = nodeSignature(timestamp, body, randomBytes(24));
    const signature = `v1,bm90LWl0 ${other} v2,zzz ${nodeSignature(timestamp)}`;
    await verifyWebhook({ id, timestamp: String(timestamp), signature, body }, secret);
  });

  test("rejects a tampered body, a wrong secret, and stale or future timestamps", async () => {
    const timestamp = now();
    const cases: [string, Parameters<typeof verifyWebhook>[0], string, string][] = [
      [
        "tampered",
        { id, timestamp: String(timestamp), signature: nodeSignature(timestamp), body: `${body} ` },
        secret,
        "invalid_signature",
      ],
      [
        "wrong secret",
        { id, timestamp: String(timestamp), signature: nodeSignature(timestamp), body },
        `whsec_${randomBytes(24).toString("base64")}`,
        "invalid_signature",
      ],
      [
        "stale",
        { id, timestamp: String(timestamp - 301), signature: nodeSignature(timestamp - 301), body },
        secret,
        "timestamp_out_of_tolerance",
      ],
      [
        "future",
        { id, timestamp: String(timestamp + 400), signature: nodeSignature(timestamp + 400), body },
        secret,
        "timestamp_out_of_tolerance",
      ],
      [
        "not a number",
        { id, timestamp: "yesterday", signature: nodeSignature(timestamp), body },
        secret,
        "invalid_timestamp",
      ],
      [
        "missing headers",
        { id: null, timestamp: String(timestamp), signature: nodeSignature(timestamp), body },
        secret,
        "missing_headers",
      ],
    ];
    for (const [label, parts, key, reason] of cases) {
      await assert.rejects(verifyWebhook(parts, key), (error: unknown) => {
        assert.ok(error instanceof WebhookVerificationError, label);
        assert.equal(error.reason, reason, label);
        return true;
      });
    }
  });

  test("the tolerance is configurable, and a fixed clock can be injected", async () => {
    const old = 1_700_000_000;
    const parts = { id, timestamp: String(old), signature: nodeSignature(old), body };
    await verifyWebhook(parts, secret, { now: () => old + 299 });
    await assert.rejects(verifyWebhook(parts, secret, { now: () => old + 301 }), WebhookVerificationError);
    await verifyWebhook(parts, secret, { tolerance: Number.POSITIVE_INFINITY });
  });

  test("signWebhook matches node:crypto", async () => {
    const timestamp = now();
    assert.equal(await signWebhook({ id, timestamp, body }, secret), nodeSignature(timestamp));
  });
});

describe("validateWebhook (replicate-compatible)", () => {
  test("(request, secret) and ({ id, timestamp, signature, body, secret }) forms resolve booleans", async () => {
    const timestamp = now();
    const request = new Request("https://my.app/webhooks", {
      method: "POST",
      headers: {
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": nodeSignature(timestamp),
      },
      body,
    });
    assert.equal(await validateWebhook(request.clone(), secret), true);
    assert.equal(await validateWebhook(request, `whsec_${randomBytes(24).toString("base64")}`), false);
    const data = { id, timestamp: String(timestamp), signature: nodeSignature(timestamp), body, secret };
    assert.equal(await validateWebhook(data), true);
    assert.equal(await validateWebhook({ ...data, body: `${body}x` }), false);
    assert.equal(
      await validateWebhook(data, globalThis.crypto),
      true,
      "a Crypto as second argument still works",
    );
  });

  test("stale deliveries are refused by default (a replay), unless the tolerance allows them", async () => {
    const old = now() - 3600;
    const data = { id, timestamp: String(old), signature: nodeSignature(old), body, secret };
    assert.equal(await validateWebhook(data), false);
    assert.equal(await validateWebhook(data, { tolerance: 7200 }), true);
  });

  test("missing headers throw, as in the replicate package", async () => {
    await assert.rejects(
      validateWebhook({ id: "", timestamp: "1", signature: "v1,x", body, secret }),
      /Missing required webhook headers/,
    );
  });
});
