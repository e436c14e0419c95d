import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isFileValue, RunnerPool } from "../src/index.js";
import { fixture, type Recorded, recorder, request, scratch, until } from "./helpers.js";

const pools: RunnerPool[] = [];
function pool(options: ConstructorParameters<typeof RunnerPool>[0]): RunnerPool {
  const created = new RunnerPool(options);
  pools.push(created);
  return created;
}
after(() => Promise.all(pools.map((p) => p.close())));

describe("a well-behaved predictor", () => {
  test("runs setup once, captures logs, progress and metrics, returns output", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor"), maxInstances: 1 });
    const first = recorder();
    const result = await runners.run(request({ text: "you" }), first);
    assert.equal(result.status, "succeeded");
    assert.ok(result.status === "succeeded");
    assert.deepEqual((result.output as { text: string }).text, "hello you");
    assert.deepEqual(result.metrics, { chars: 3 });
    assert.equal(first.started, true);
    assert.match(first.logs, /^predicting you\nto stderr\n 50%\|█████ {5}\| 1\/2 \[00:00<.*it\/s\]\ndone\n$/);
    const second = await runners.run(request({}), recorder());
    assert.ok(second.status === "succeeded");
    assert.equal((second.output as { text: string }).text, "hello world");
    assert.equal((second.output as { pid: number }).pid, (result.output as { pid: number }).pid);
  });

  test("invalid input fails with Cog's messages", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor") });
    const result = await runners.run(request({ text: 3, sleep_ms: -1 }), recorder());
    assert.deepEqual(result, {
      status: "failed",
      error: "text: str type expected\nsleep_ms: ensure this value is greater than or equal to 0",
    });
  });

  test("a predictor that honours the abort signal ends canceled without losing its process", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor") });
    const controller = new AbortController();
    const running = runners.run(request({ sleep_ms: 10_000 }, { signal: controller.signal }), recorder());
    await until(() => runners.stats().running === 1);
    const before = runners.stats();
    controller.abort();
    assert.deepEqual(await running, { status: "canceled" });
    assert.equal(before.running, 1);
    assert.equal(runners.stats().instances, 1);
  });

  test("a predictor run one at a time gets its output as logs without promise hooks in its process", async () => {
    const runners = pool({ predictorPath: fixture("alone-predictor") });
    for (const text of ["one", "two"]) {
      const callbacks = recorder();
      const result = await runners.run(request({ text }), callbacks);
      // AsyncLocalStorage would have turned promise hooks on: a continuation's async id would not be 0.
      assert.deepEqual(result, { status: "succeeded", output: { async_id: 0 } });
      assert.equal(callbacks.logs, `before ${text}\nafter ${text}\n`);
    }
  });

  test("concurrent predictions each get only their own output as logs", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor"), maxInstances: 1 });
    const texts = ["a", "b", "c"];
    const recorded = texts.map(() => recorder());
    const results = await Promise.all(
      texts.map((text, i) => runners.run(request({ text, sleep_ms: 30 }), recorded[i] as Recorded)),
    );
    assert.equal(new Set(results.map((r) => (r as { output: { pid: number } }).output.pid)).size, 1);
    texts.forEach((text, i) => {
      const logs = (recorded[i] as Recorded).logs;
      assert.match(logs, new RegExp(`^predicting ${text}\n`));
      for (const other of texts)
        if (other !== text) assert.doesNotMatch(logs, new RegExp(`predicting ${other}`));
    });
  });

  test("100 concurrent predictions through a pool with at most 2 processes", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor"), maxInstances: 2 });
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const promise = runners.run(request({ text: `n${i}`, sleep_ms: 20 }), recorder());
        peak = Math.max(peak, runners.stats().instances);
        return promise;
      }),
    );
    const pids = new Set<number>();
    results.forEach((result, i) => {
      assert.ok(result.status === "succeeded", JSON.stringify(result));
      const output = result.output as { text: string; pid: number };
      assert.equal(output.text, `hello n${i}`);
      pids.add(output.pid);
    });
    assert.equal(pids.size, 2);
    assert.ok(peak <= 2);
  });

  test("scales to zero when idle, then cold-starts with the run waiting in `starting`", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor"), idleTimeoutMs: 200 });
    assert.equal((await runners.run(request({}), recorder())).status, "succeeded");
    assert.equal(runners.stats().instances, 1);
    await sleep(600);
    assert.equal(runners.stats().instances, 0);
    const cold = recorder();
    const running = runners.run(request({}), cold);
    assert.equal(cold.started, false, "onStart waits for the runner to boot");
    assert.equal(runners.stats().booting, 1);
    assert.equal((await running).status, "succeeded");
    assert.equal(cold.started, true);
  });

  test("minInstances keeps processes warm", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor"), minInstances: 1, idleTimeoutMs: 100 });
    await sleep(800);
    assert.deepEqual(runners.stats(), { instances: 1, booting: 0, ready: 1, running: 0, queued: 0 });
  });

  test("a run canceled while queued never starts", async () => {
    const runners = pool({ predictorPath: fixture("echo-predictor") });
    const controller = new AbortController();
    const callbacks = recorder();
    const running = runners.run(request({}, { signal: controller.signal }), callbacks);
    controller.abort();
    assert.deepEqual(await running, { status: "canceled" });
    assert.equal(callbacks.started, false);
  });
});

describe("misbehaving predictors", () => {
  const path = fixture("misbehaving-predictor");

  test("a crash mid-prediction fails the runs of that process and the process is replaced", async () => {
    const runners = pool({ predictorPath: path, maxInstances: 1 });
    const crash = runners.run(request({ behaviour: "exit" }), recorder());
    const bystander = runners.run(request({ behaviour: "uncaught" }), recorder());
    const crashed = await crash;
    assert.equal(crashed.status, "failed");
    assert.match((crashed as { error: string }).error, /runner process exited unexpectedly \(code 3\)/);
    assert.equal((await bystander).status, "failed");
    assert.deepEqual(await runners.run(request({ behaviour: "ok" }), recorder()), {
      status: "succeeded",
      output: "ok ok",
    });
  });

  test("an uncaught exception in a timer fails the run with the error", async () => {
    const runners = pool({ predictorPath: path });
    const result = await runners.run(request({ behaviour: "uncaught" }), recorder());
    assert.equal(result.status, "failed");
    assert.match((result as { error: string }).error, /kaboom from a timer/);
  });

  test("an exception in predict fails the run, with the stack in the logs", async () => {
    const runners = pool({ predictorPath: path });
    const callbacks = recorder();
    assert.deepEqual(await runners.run(request({ behaviour: "throw" }), callbacks), {
      status: "failed",
      error: "boom",
    });
    assert.match(callbacks.logs, /behaviour throw\nError: boom\n {4}at /);
  });

  test("an infinite loop times out; the process is killed after the grace period and replaced", async () => {
    const runners = pool({ predictorPath: path, predictionTimeoutMs: 300, cancelGraceMs: 200 });
    const started = Date.now();
    assert.deepEqual(await runners.run(request({ behaviour: "loop" }), recorder()), {
      status: "failed",
      error: "Prediction timed out after 0.3s",
    });
    assert.ok(Date.now() - started < 3000);
    assert.equal((await runners.run(request({}), recorder())).status, "succeeded");
  });

  test("a predictor that ignores cancel is killed after the grace period and ends canceled", async () => {
    const runners = pool({ predictorPath: path, cancelGraceMs: 300 });
    const controller = new AbortController();
    const running = runners.run(
      request({ behaviour: "ignore-cancel" }, { signal: controller.signal }),
      recorder(),
    );
    const bystander = runners.run(request({ behaviour: "ignore-cancel" }), recorder());
    await until(() => runners.stats().running === 2);
    const canceledAt = Date.now();
    controller.abort();
    assert.deepEqual(await running, { status: "canceled" });
    assert.ok(Date.now() - canceledAt >= 250);
    const other = await bystander;
    assert.equal(other.status, "failed");
    assert.match((other as { error: string }).error, /did not stop within 0.3s of being canceled/);
    assert.equal((await runners.run(request({}), recorder())).status, "succeeded");
  });

  test("a runner out of memory fails its run with a clear error and is replaced", async () => {
    const runners = pool({ predictorPath: path, maxOldSpaceSizeMb: 64 });
    const result = await runners.run(request({ behaviour: "oom" }), recorder());
    assert.deepEqual(result, {
      status: "failed",
      error: "runner process ran out of memory (heap limit 64 MB)",
    });
    assert.equal((await runners.run(request({}), recorder())).status, "succeeded");
  });
});

describe("setup failure", () => {
  test("fails the waiting run with the setup logs, then retries setup with backoff", async () => {
    const counter = join(scratch(), "attempts");
    const runners = pool({
      predictorPath: fixture("flaky-setup-predictor"),
      env: { FLAKY_SETUP_COUNTER: counter },
      setupRetryBaseMs: 300,
    });
    const first = recorder();
    const failed = await runners.run(request({}), first);
    assert.deepEqual(failed, { status: "failed", error: "Setup failed: weights are not there yet" });
    assert.match(first.logs, /loading weights \(attempt 1\)\nError: weights are not there yet/);
    assert.equal(first.started, false);
    assert.match(runners.lastSetupFailure?.logs ?? "", /attempt 1/);
    const retriedAt = Date.now();
    const second = await runners.run(request({ text: "now" }), recorder());
    assert.deepEqual(second, { status: "succeeded", output: "ready now" });
    assert.ok(Date.now() - retriedAt >= 150, "the retry waited for the backoff");
    assert.equal(readFileSync(counter, "utf8"), "2");
  });

  test("a module without a predictor is a setup failure", async () => {
    const runners = pool({ predictorPath: fixture("../helpers") });
    const result = await runners.run(request({}), recorder());
    assert.equal(result.status, "failed");
    assert.match((result as { error: string }).error, /does not export a predictor/);
  });
});

describe("files and training", () => {
  test("every file form becomes a FileValue in the scratch dir", async () => {
    const runners = pool({ predictorPath: fixture("files-predictor") });
    const infile = join(scratch(), "input.png");
    writeFileSync(infile, "input bytes");
    const run = request({ infile });
    const result = await runners.run(run, recorder());
    assert.ok(result.status === "succeeded", JSON.stringify(result));
    const output = result.output as Record<string, unknown>;
    const contents: Record<string, string> = {};
    for (const key of ["path", "blob", "buffer", "readable", "web"]) {
      const value = output[key];
      assert.ok(isFileValue(value), key);
      assert.ok(value.path.startsWith(run.scratchDir), key);
      contents[key] = readFileSync(value.path, "utf8");
    }
    assert.deepEqual(contents, {
      path: "from a path",
      blob: "from a blob",
      buffer: "from a buffer",
      readable: "from a readable",
      web: "from a web stream",
    });
    assert.equal((output.path as { content_type: string }).content_type, "text/plain");
    assert.equal((output.blob as { content_type: string }).content_type, "image/png");
    assert.equal(output.echoed, infile);
    assert.equal(output.infile_text, "input bytes");
  });

  test("bytes returned land in a scratch dir the server did not make", async () => {
    // The server makes the directory only for versions that declare files.
    const runners = pool({ predictorPath: fixture("bytes-predictor") });
    const run = { ...request({}), scratchDir: join(scratch(), "not-made-yet") };
    const result = await runners.run(run, recorder());
    assert.ok(result.status === "succeeded", JSON.stringify(result));
    assert.ok(isFileValue(result.output));
    assert.equal(dirname(result.output.path), run.scratchDir);
    assert.equal(readFileSync(result.output.path, "utf8"), "bytes");
  });

  test("a training run returns its weights as a file", async () => {
    const runners = pool({ predictorPath: fixture("files-predictor") });
    const result = await runners.run(request({ n: 3 }, { kind: "training" }), recorder());
    assert.ok(result.status === "succeeded");
    const weights = (result.output as { weights: unknown }).weights;
    assert.ok(isFileValue(weights));
    assert.equal(readFileSync(weights.path, "utf8"), "www");
  });

  test("a burst of items in one turn arrives whole and in order, logs beside it", async () => {
    const runners = pool({ predictorPath: fixture("burst-predictor") });
    const callbacks = recorder();
    const result = await runners.run(request({ count: 5000 }), callbacks);
    const expected = Array.from({ length: 5000 }, (_, i) => `item ${i}`);
    assert.deepEqual(result, { status: "succeeded", output: expected });
    assert.deepEqual(callbacks.outputs, expected);
    assert.equal(callbacks.logs, expected.map((line) => `${line}\n`).join(""));
  });

  test("consecutive items of one batch reach onOutputs in one call, when the caller takes them", async () => {
    const runners = pool({ predictorPath: fixture("burst-predictor") });
    const calls: { index: number; values: unknown[] }[] = [];
    const callbacks = recorder();
    callbacks.onOutputs = (index, values) => calls.push({ index, values });
    const onOutput = callbacks.onOutput.bind(callbacks);
    callbacks.onOutput = (index, value) => {
      calls.push({ index, values: [value] });
      onOutput(index, value);
    };
    const result = await runners.run(request({ count: 5000, quiet: true }), callbacks);
    const expected = Array.from({ length: 5000 }, (_, i) => `item ${i}`);
    assert.deepEqual(result, { status: "succeeded", output: expected });
    // In order, no gap, no repeat: each call starts where the last one ended.
    let next = 0;
    for (const call of calls) {
      assert.equal(call.index, next);
      next += call.values.length;
    }
    assert.deepEqual(
      calls.flatMap((call) => call.values),
      expected,
    );
    assert.ok(calls.length < 100, `${calls.length} calls for 5000 items in one turn`);
  });

  test("a predictor that blocks its event loop still streams: a batch goes out once 16 ms old", async () => {
    const runners = pool({ predictorPath: fixture("burst-predictor") });
    const arrivals = new Map<unknown, number>();
    const callbacks = recorder();
    const onOutput = callbacks.onOutput.bind(callbacks);
    callbacks.onOutput = (index, value) => {
      arrivals.set(value, performance.now());
      onOutput(index, value);
    };
    const result = await runners.run(request({ count: 0, busy_ms: 400 }), callbacks);
    const done = performance.now();
    assert.deepEqual(result, {
      status: "succeeded",
      output: ["before the block", "after the first block", "after the second block"],
    });
    // The first two items were sent while the second block ran, not held until the run ended.
    const second = arrivals.get("after the first block");
    assert.ok(
      second !== undefined && done - second >= 200,
      `arrived ${done - (second ?? done)} ms before done`,
    );
  });

  test("iterator outputs stream item by item", async () => {
    const runners = pool({ predictorPath: fixture("cog-example-predictor") });
    const callbacks = recorder();
    const result = await runners.run(request({ prompt: "w", steps: 3 }), callbacks);
    assert.deepEqual(result, { status: "succeeded", output: ["hello w 0 ", "hello w 1 ", "hello w 2 "] });
    assert.deepEqual(callbacks.outputs, ["hello w 0 ", "hello w 1 ", "hello w 2 "]);
    assert.equal(callbacks.logs, "starting\nstep 0\nstep 1\nstep 2\n");
    const training = await runners.run(request({}, { kind: "training" }), recorder());
    assert.deepEqual(training, { status: "failed", error: "This model does not support training" });
  });
});
