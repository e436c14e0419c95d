import type { Prediction } from "@replicant/protocol";
import type { FetchLike } from "../../src/index.js";

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Headers;
  body: string | undefined;
  rawBody: BodyInit | null | undefined;
  at: number;
}

export type FakeHandler = (request: RecordedRequest, index: number) => Response | Promise<Response>;

/** A fetch that records every request and answers with `handler`; no network involved. */
export function fakeFetch(handler: FakeHandler): { fetch: FetchLike; requests: RecordedRequest[] } {
  const requests: RecordedRequest[] = [];
  const fetch: FetchLike = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const body = typeof init?.body === "string" ? init.body : undefined;
    const recorded: RecordedRequest = {
      method: init?.method ?? "GET",
      url,
      headers: new Headers(init?.headers),
      body,
      rawBody: init?.body,
      at: Date.now(),
    };
    requests.push(recorded);
    const signal = init?.signal;
    if (signal?.aborted) throw signal.reason;
    const answer = handler(recorded, requests.length - 1);
    if (!signal) return answer;
    return new Promise<Response>((resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      Promise.resolve(answer).then(resolve, reject);
    });
  };
  return { fetch, requests };
}

export function json(body: unknown, init: ResponseInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status: 200,
    ...init,
    headers: { "Content-Type": "application/json", ...(init.headers as Record<string, string> | undefined) },
  });
}

export function problem(
  status: number,
  title: string,
  detail: string,
  extra: Record<string, unknown> = {},
): Response {
  return new Response(JSON.stringify({ title, detail, status, ...extra }), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });
}

/** A promise that never settles unless the request's signal aborts (the fake fetch rejects then). */
export function hang(): Promise<Response> {
  return new Promise<Response>(() => {});
}

export function prediction(overrides: Partial<Prediction> = {}): Prediction {
  const id = overrides.id ?? "p1";
  return {
    id,
    model: "replicate/hello-world",
    version: "hidden",
    input: {},
    output: null,
    logs: "",
    error: null,
    status: "starting",
    source: "api",
    data_removed: false,
    created_at: "2025-01-01T00:00:00.000Z",
    started_at: null,
    completed_at: null,
    metrics: {},
    urls: {
      get: `https://api.example.test/v1/predictions/${id}`,
      cancel: `https://api.example.test/v1/predictions/${id}/cancel`,
      web: `https://example.test/p/${id}`,
    },
    ...overrides,
  };
}

/** An SSE body that sends `chunks` and then ends (or stays open if `keepOpen`). */
export function sseResponse(chunks: string[], options: { keepOpen?: boolean } = {}): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      if (!options.keepOpen) controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

export const BASE_URL = "https://api.example.test/v1";
