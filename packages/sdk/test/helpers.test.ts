import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ModelError,
  modelRef,
  PredictionCanceledError,
  parseProgressFromLogs,
  Replicant,
  type RunManyProgress,
} from "../src/index.js";
import { BASE_URL, fakeFetch, json, prediction } from "./helpers/fake-fetch.js";

describe("run, use, wait, runMany", () => {
  test("run() falls back to polling after a blocking create that did not finish, reporting progress", async () => {
    let polls = 0;
    const { fetch } = fakeFetch((request) => {
      if (request.method === "POST") return json(prediction({ status: "processing" }), { status: 202 });
      polls++;
      return json(
        prediction(polls < 3 ? { status: "processing" } : { status: "succeeded", output: "hello world" }),
      );
    });
    const statuses: string[] = [];
    const replicate = new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch, pollInterval: 5 });
    const output = await replicate.run("replicate/hello-world", { input: { text: "world" } }, (p) => {
      statuses.push(p.status);
    });
    assert.equal(output, "hello world");
    assert.deepEqual(statuses, ["processing", "processing", "processing", "succeeded", "succeeded"]);
  });

  test("wait: { mode: 'poll' } sends no Prefer header", async () => {
    const { fetch, requests } = fakeFetch(() => json(prediction({ status: "succeeded" }), { status: 201 }));
    await new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch }).run("a/b", {
      input: {},
      wait: { mode: "poll" },
    });
    assert.equal(requests[0]!.headers.get("prefer"), null);
  });

  test("a failed prediction throws ModelError with id, status, error and logs", async () => {
    const failed = prediction({
      status: "failed",
      error: "CUDA out of memory",
      logs: "loading\nTraceback: OOM",
    });
    const { fetch } = fakeFetch(() => json(failed, { status: 201 }));
    await assert.rejects(
      new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch }).run("a/b", { input: {} }),
      (error) => {
        assert.ok(error instanceof ModelError);
        assert.equal(error.message, "Prediction failed: CUDA out of memory");
        assert.equal(error.id, "p1");
        assert.equal(error.status, "failed");
        assert.equal(error.logsTail(1), "Traceback: OOM");
        return true;
      },
    );
  });

  test("a prediction canceled by its deadline throws PredictionCanceledError", async () => {
    const { fetch } = fakeFetch(() => json(prediction({ status: "aborted" }), { status: 201 }));
    await assert.rejects(
      new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch }).run("a/b", { input: {}, cancelAfter: "5s" }),
      PredictionCanceledError,
    );
  });

  test("use() returns a callable bound to the client and ref", async () => {
    const { fetch, requests } = fakeFetch((request) => {
      const input = JSON.parse(request.body ?? "{}").input as { text: string };
      return json(prediction({ status: "succeeded", output: `hello ${input.text}` }), { status: 201 });
    });
    const replicate = new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch });
    const hello = replicate.use(modelRef<{ text: string }, string>("replicate/hello-world"));
    const greeting: string = await hello({ text: "world" });
    assert.equal(greeting, "hello world");
    const created = await hello.create({ text: "again" });
    assert.equal(created.status, "succeeded");
    assert.equal(hello.ref, "replicate/hello-world");
    assert.equal(requests.length, 2);
  });

  test("wait() polls until terminal, honours stop(), and throws ModelError on failure", async () => {
    let polls = 0;
    const { fetch } = fakeFetch(() => {
      polls++;
      return json(prediction(polls < 2 ? { status: "processing" } : { status: "succeeded", output: 1 }));
    });
    const replicate = new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch });
    const done = await replicate.wait(prediction(), { interval: 5 });
    assert.equal(done.status, "succeeded");
    const stopped = await replicate.wait(prediction(), { interval: 5 }, () => true);
    assert.equal(stopped.status, "starting");
    const failing = fakeFetch(() => json(prediction({ status: "failed", error: "nope" })));
    await assert.rejects(
      new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch: failing.fetch }).wait(prediction(), {
        interval: 5,
      }),
      ModelError,
    );
  });

  test("runMany() bounds concurrency, spaces starts by ratePerMinute, reports progress, and settles each input", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const starts: number[] = [];
    const { fetch } = fakeFetch(async (request) => {
      starts.push(Date.now());
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 30));
      inFlight--;
      const input = JSON.parse(request.body ?? "{}").input as { n: number };
      if (input.n === 3) return json(prediction({ status: "failed", error: "bad n" }), { status: 201 });
      return json(prediction({ status: "succeeded", output: input.n * 2 }), { status: 201 });
    });
    const replicate = new Replicant({ auth: "r8", baseUrl: BASE_URL, fetch });
    const progress: RunManyProgress[] = [];
    const inputs = [1, 2, 3, 4, 5].map((n) => ({ n }));
    const begun = Date.now();
    const results = await replicate.runMany<{ n: number }, number>("a/b", inputs, {
      concurrency: 2,
      ratePerMinute: 1200,
      onProgress: (update) => progress.push(update),
    });
    assert.ok(maxInFlight <= 2, `max in flight ${maxInFlight}`);
    // The limiter hands out a slot every 50 ms (1200 a minute) from when runMany began: start k is never
    // earlier than slot k. (Measured from runMany's call, not from start 0: on a busy machine start 0 can
    // itself be late, and a later start on time then looks early against it.)
    for (let index = 1; index < starts.length; index++) {
      assert.ok(starts[index]! - begun >= index * 50 - 2, `start ${index} came before its slot`);
    }
    assert.deepEqual(
      results.map((result) => (result.status === "fulfilled" ? result.value : "failed")),
      [2, 4, "failed", 8, 10],
    );
    const last = progress[progress.length - 1]!;
    assert.deepEqual(last, { total: 5, completed: 5, succeeded: 4, failed: 1, running: 0 });
    assert.equal(progress.length, 5);
  });

  test("parseProgressFromLogs reads the last tqdm line", () => {
    const logs =
      "loading\n 10%|█         | 1/10 [00:01<00:09]\n 76%|███████▋  | 7568/10000 [00:33<00:10, 229.00it/s]\n";
    assert.deepEqual(parseProgressFromLogs(logs), { percentage: 0.76, current: 7568, total: 10000 });
    assert.equal(parseProgressFromLogs({ logs: "nothing" }), null);
  });
});
