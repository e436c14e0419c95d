import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ModelRecord, PageRequest, PageResult, PredictionRecord, Store } from "@replicant/server";
import {
  at,
  makeAccount,
  makeDeployment,
  makeFile,
  makeModel,
  makeOutbox,
  makePrediction,
  makeRelease,
  makeVersion,
  uniqueId,
} from "./fixtures.js";

export type StoreFactory = () => Promise<{ store: Store; cleanup(): Promise<void> }>;

/** Follows `next` cursors to the end, failing on a cursor loop. */
async function collectPages<T>(
  fetch: (page: PageRequest) => Promise<PageResult<T>>,
  limit: number,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10_000, "pagination does not terminate");
    const page = await fetch({ cursor, limit });
    assert.ok(
      page.items.length <= limit,
      `page has ${page.items.length} items, more than the limit ${limit}`,
    );
    items.push(...page.items);
    if (page.next === null) return items;
    assert.ok(page.items.length > 0, "a non-final page is empty");
    assert.notEqual(page.next, cursor, "cursor did not advance");
    cursor = page.next;
  }
}

function newestFirst(a: { created_at: string; id: string }, b: { created_at: string; id: string }): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * The Store contract. `factory` returns a fresh, empty store (migrated or not: the suite calls migrate)
 * for each test, and a cleanup that closes and deletes it.
 */
export function storeConformance(name: string, factory: StoreFactory): void {
  async function withStore(body: (store: Store) => Promise<void>): Promise<void> {
    const { store, cleanup } = await factory();
    try {
      await store.migrate();
      await body(store);
    } finally {
      await cleanup();
    }
  }

  describe(`Store conformance: ${name}`, () => {
    it("migrate is idempotent", () =>
      withStore(async (store) => {
        await store.migrate();
        await store.migrate();
        const account = makeAccount();
        await store.createAccount(account);
        await store.migrate();
        assert.deepEqual(await store.getAccountById(account.id), account);
      }));

    describe("accounts and tokens", () => {
      it("creates and reads accounts by id and username", () =>
        withStore(async (store) => {
          const user = makeAccount({ github_url: "https://github.com/u" });
          const org = makeAccount({ type: "organization", name: null, avatar_url: null });
          await store.createAccount(user);
          await store.createAccount(org);
          assert.deepEqual(await store.getAccountById(user.id), user);
          assert.deepEqual(await store.getAccountByUsername(org.username), org);
          assert.equal(await store.getAccountById("missing"), undefined);
          assert.equal(await store.getAccountByUsername("missing"), undefined);
        }));

      it("rejects a duplicate username", () =>
        withStore(async (store) => {
          const first = makeAccount();
          await store.createAccount(first);
          await assert.rejects(store.createAccount(makeAccount({ username: first.username })));
        }));

      it("adds, finds, lists and deletes tokens", () =>
        withStore(async (store) => {
          const alice = makeAccount();
          const bob = makeAccount();
          await store.createAccount(alice);
          await store.createAccount(bob);
          const t1 = {
            hash: "a".repeat(64),
            account_id: alice.id,
            prefix: "r8_aaa",
            name: "laptop",
            created_at: at(1),
          };
          const t2 = {
            hash: "b".repeat(64),
            account_id: alice.id,
            prefix: "r8_bbb",
            name: null,
            created_at: at(2),
          };
          const t3 = {
            hash: "c".repeat(64),
            account_id: bob.id,
            prefix: "r8_ccc",
            name: null,
            created_at: at(3),
          };
          for (const token of [t1, t2, t3]) await store.addToken(token);
          assert.deepEqual(await store.getAccountByTokenHash(t1.hash), alice);
          assert.deepEqual(await store.getAccountByTokenHash(t3.hash), bob);
          assert.equal(await store.getAccountByTokenHash("f".repeat(64)), undefined);
          assert.deepEqual(await store.listTokens(alice.id), [t1, t2]);
          assert.equal(await store.deleteToken(bob.id, t1.hash), false, "deleted another account's token");
          assert.equal(await store.deleteToken(alice.id, t1.hash), true);
          assert.equal(await store.deleteToken(alice.id, t1.hash), false);
          assert.equal(await store.getAccountByTokenHash(t1.hash), undefined);
          assert.deepEqual(await store.listTokens(alice.id), [t2]);
        }));

      it("grants, lists and revokes permissions per account, idempotently", () =>
        withStore(async (store) => {
          const alice = makeAccount();
          const bob = makeAccount();
          await store.createAccount(alice);
          await store.createAccount(bob);
          assert.deepEqual(await store.listPermissions(alice.id), []);
          await store.grantPermission(alice.id, "push", at(1));
          await store.grantPermission(alice.id, "push", at(2));
          assert.deepEqual(await store.listPermissions(alice.id), ["push"]);
          assert.deepEqual(await store.listPermissions(bob.id), [], "a grant leaked to another account");
          assert.equal(await store.revokePermission(bob.id, "push"), false);
          assert.equal(await store.revokePermission(alice.id, "push"), true);
          assert.equal(await store.revokePermission(alice.id, "push"), false);
          assert.deepEqual(await store.listPermissions(alice.id), []);
        }));
    });

    describe("models", () => {
      it("round-trips every field and rejects a duplicate owner/name", () =>
        withStore(async (store) => {
          const owner = makeAccount();
          await store.createAccount(owner);
          const model = makeModel(owner, {
            is_official: true,
            run_count: 42,
            visibility: "private",
            github_url: "https://github.com/o/m",
            cover_image_url: "https://example.com/c.png",
            default_example_id: "ex1",
          });
          await store.createModel(model);
          assert.deepEqual(await store.getModel(model.owner, model.name), model);
          assert.deepEqual(await store.getModelById(model.id), model);
          assert.equal(await store.getModel(model.owner, "missing"), undefined);
          assert.equal(await store.getModelById("missing"), undefined);
          await assert.rejects(store.createModel(makeModel(owner, { name: model.name })));
        }));

      it("updates, counts runs and deletes", () =>
        withStore(async (store) => {
          const owner = makeAccount();
          await store.createAccount(owner);
          const model = makeModel(owner);
          await store.createModel(model);
          await store.updateModel(model.id, {
            description: "new",
            visibility: "private",
            is_official: true,
            readme: null,
          });
          await store.incrementRunCount(model.id);
          await store.incrementRunCount(model.id);
          assert.deepEqual(await store.getModelById(model.id), {
            ...model,
            description: "new",
            visibility: "private",
            is_official: true,
            readme: null,
            run_count: 2,
          });
          await store.deleteModel(model.id);
          assert.equal(await store.getModelById(model.id), undefined);
          assert.equal(await store.getModel(model.owner, model.name), undefined);
        }));

      it("lists visible models in every sort order, across pages, without gaps or duplicates", () =>
        withStore(async (store) => {
          const alice = makeAccount();
          const bob = makeAccount();
          await store.createAccount(alice);
          await store.createAccount(bob);
          const models: ModelRecord[] = [];
          for (let i = 0; i < 130; i++) {
            const owner = i % 3 === 0 ? bob : alice;
            const model = makeModel(owner, {
              // Repeated timestamps exercise the id tie-break.
              created_at: at(100 + Math.floor(i / 4)),
              visibility: i % 5 === 0 ? "private" : "public",
              latest_version_id: i % 7 === 0 ? null : `v${i}`,
              latest_version_created_at: i % 7 === 0 ? null : at(1000 - Math.floor(i / 3)),
            });
            models.push(model);
            await store.createModel(model);
          }
          const visibleToAlice = models.filter(
            (m) => m.visibility === "public" || m.owner_account_id === alice.id,
          );
          const visibleToNobody = models.filter((m) => m.visibility === "public");
          const key = (m: ModelRecord, by: string) =>
            by === "model_created_at" ? m.created_at : (m.latest_version_created_at ?? "");
          for (const sortBy of ["model_created_at", "latest_version_created_at"] as const) {
            for (const direction of ["asc", "desc"] as const) {
              for (const [viewer, expectedSet] of [
                [alice.id, visibleToAlice],
                [null, visibleToNobody],
              ] as const) {
                const listed = await collectPages(
                  (page) =>
                    store.listModels({
                      ...page,
                      visible_to: viewer,
                      sort_by: sortBy,
                      sort_direction: direction,
                    }),
                  17,
                );
                const ids = listed.map((m) => m.id);
                assert.equal(new Set(ids).size, ids.length, "duplicates across pages");
                assert.deepEqual(new Set(ids), new Set(expectedSet.map((m) => m.id)), "wrong set of models");
                for (let i = 1; i < listed.length; i++) {
                  const prev = listed[i - 1]!;
                  const cur = listed[i]!;
                  const a = key(prev, sortBy);
                  const b = key(cur, sortBy);
                  const ordered =
                    direction === "desc"
                      ? a > b || (a === b && prev.id > cur.id)
                      : a < b || (a === b && prev.id < cur.id);
                  assert.ok(
                    ordered,
                    `out of order (${sortBy} ${direction}) at ${i}: ${prev.id} then ${cur.id}`,
                  );
                }
                // Nulls (models without versions) come last in descending order.
                if (sortBy === "latest_version_created_at" && direction === "desc") {
                  const firstNull = listed.findIndex((m) => m.latest_version_created_at === null);
                  assert.ok(firstNull > 0);
                  assert.ok(listed.slice(firstNull).every((m) => m.latest_version_created_at === null));
                }
              }
            }
          }
        }));

      it("searches owner, name, description and readme case-insensitively, honouring visibility", () =>
        withStore(async (store) => {
          const alice = makeAccount({ username: uniqueId("alice") });
          const bob = makeAccount();
          await store.createAccount(alice);
          await store.createAccount(bob);
          const byName = makeModel(bob, { name: "Stable-Diffusion" });
          const byDescription = makeModel(bob, { description: "Makes STABLE images" });
          const byReadme = makeModel(bob, { readme: "very stable readme" });
          const privateOther = makeModel(bob, { name: "stable-private", visibility: "private" });
          const privateOwn = makeModel(alice, { name: "my-stable", visibility: "private" });
          const unrelated = makeModel(bob, { name: "llama", description: "text", readme: null });
          const literal = makeModel(bob, { name: "fifty_percent", description: "100% sure" });
          for (const m of [byName, byDescription, byReadme, privateOther, privateOwn, unrelated, literal]) {
            await store.createModel(m);
          }
          const ids = async (query: string, viewer: string | null) =>
            new Set((await store.searchModels(query, viewer, 50)).map((m) => m.id));
          assert.deepEqual(
            await ids("sTaBlE", alice.id),
            new Set([byName.id, byDescription.id, byReadme.id, privateOwn.id]),
          );
          assert.deepEqual(await ids("stable", null), new Set([byName.id, byDescription.id, byReadme.id]));
          assert.deepEqual(await ids(alice.username, alice.id), new Set([privateOwn.id]));
          // LIKE wildcards in the query are literal characters.
          assert.deepEqual(await ids("%", null), new Set([literal.id]));
          assert.deepEqual(await ids("model_", null), new Set());
          assert.deepEqual(await ids("y_p", null), new Set([literal.id]));
          assert.equal((await store.searchModels("stable", alice.id, 2)).length, 2);
        }));
    });

    describe("versions", () => {
      it("creates versions, re-points latest, pages, and re-points again on delete", () =>
        withStore(async (store) => {
          const owner = makeAccount();
          await store.createAccount(owner);
          const model = makeModel(owner);
          await store.createModel(model);
          const v1 = makeVersion(model, { created_at: at(10), training_schema: { type: "object" } });
          const v2 = makeVersion(model, {
            created_at: at(20),
            runner: { kind: "cog", url: "http://localhost:5000" },
            cog_version: null,
          });
          const v3 = makeVersion(model, {
            created_at: at(30),
            runner: { kind: "package", path: "/p", weights: "w" },
          });
          await store.createVersion(v1);
          assert.equal((await store.getModelById(model.id))?.latest_version_id, v1.id);
          await store.createVersion(v2);
          await store.createVersion(v3);
          const latest = await store.getModelById(model.id);
          assert.equal(latest?.latest_version_id, v3.id);
          assert.equal(latest?.latest_version_created_at, v3.created_at);
          assert.deepEqual(await store.getVersion(v1.id), v1);
          assert.deepEqual(await store.getVersion(v2.id), v2);
          assert.equal(await store.getVersion("missing"), undefined);

          const listed = await collectPages((page) => store.listVersions(model.id, page), 2);
          assert.deepEqual(listed, [v3, v2, v1]);

          await store.deleteVersion(v3.id);
          assert.equal(await store.getVersion(v3.id), undefined);
          let after = await store.getModelById(model.id);
          assert.equal(after?.latest_version_id, v2.id);
          assert.equal(after?.latest_version_created_at, v2.created_at);
          // Deleting a version that is not the latest keeps the latest.
          await store.deleteVersion(v1.id);
          assert.equal((await store.getModelById(model.id))?.latest_version_id, v2.id);
          await store.deleteVersion(v2.id);
          after = await store.getModelById(model.id);
          assert.equal(after?.latest_version_id, null);
          assert.equal(after?.latest_version_created_at, null);
          await store.deleteVersion("missing");
        }));

      it("pages many versions of one model without touching other models' versions", () =>
        withStore(async (store) => {
          const owner = makeAccount();
          await store.createAccount(owner);
          const model = makeModel(owner);
          const other = makeModel(owner);
          await store.createModel(model);
          await store.createModel(other);
          const versions = [];
          for (let i = 0; i < 105; i++) {
            const version = makeVersion(model, { created_at: at(Math.floor(i / 2)) });
            versions.push(version);
            await store.createVersion(version);
          }
          await store.createVersion(makeVersion(other));
          const listed = await collectPages((page) => store.listVersions(model.id, page), 10);
          assert.deepEqual(
            listed.map((v) => v.id),
            [...versions].sort(newestFirst).map((v) => v.id),
          );
        }));

      it("knows whether a version is in use by a prediction, a training or a release", () =>
        withStore(async (store) => {
          const owner = makeAccount();
          await store.createAccount(owner);
          const model = makeModel(owner);
          await store.createModel(model);
          const [free, byPrediction, byTraining, byRelease] = [1, 2, 3, 4].map(() => makeVersion(model));
          for (const v of [free!, byPrediction!, byTraining!, byRelease!]) await store.createVersion(v);
          await store.insertPrediction(makePrediction(owner, { version_id: byPrediction!.id }));
          await store.insertPrediction(
            makePrediction(owner, { kind: "training", version_id: byTraining!.id }),
          );
          const deployment = makeDeployment(owner);
          await store.createDeployment(deployment, makeRelease(deployment, byRelease!));
          assert.equal(await store.isVersionInUse(free!.id), false);
          assert.equal(await store.isVersionInUse(byPrediction!.id), true);
          assert.equal(await store.isVersionInUse(byTraining!.id), true);
          assert.equal(await store.isVersionInUse(byRelease!.id), true);
        }));
    });

    describe("predictions", () => {
      it("round-trips every field, including every kind of JSON output", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const outputs: unknown[] = [
            null,
            "text",
            42,
            1.5,
            true,
            ["a", "b"],
            { nested: { x: [1, null] } },
            "",
          ];
          for (const output of outputs) {
            const prediction = makePrediction(account, {
              output,
              status: "succeeded",
              logs: "line 1\nline 2 ✓\n",
              error: null,
              started_at: at(11),
              completed_at: at(12),
              deadline: at(100),
              metrics: { predict_time: 1.25, total_time: 2 },
              webhook_events_filter: null,
              deployment: "owner/dep",
              source: "web",
              streaming: true,
              attempt: 3,
            });
            await store.insertPrediction(prediction);
            assert.deepEqual(await store.getPrediction(prediction.id), prediction);
          }
          const training = makePrediction(account, {
            kind: "training",
            destination: "owner/dest",
            input: null,
            data_removed: true,
            version_label: "hidden",
            error: "boom",
            status: "failed",
          });
          await store.insertPrediction(training);
          assert.deepEqual(await store.getPrediction(training.id), training);
          assert.equal(await store.getPrediction("missing"), undefined);
          await assert.rejects(store.insertPrediction(training), "a duplicate id must be rejected");
        }));

      it("lists by account and kind, newest first, across many pages without gaps or duplicates", () =>
        withStore(async (store) => {
          const account = makeAccount();
          const other = makeAccount();
          await store.createAccount(account);
          await store.createAccount(other);
          const predictions: PredictionRecord[] = [];
          for (let i = 0; i < 237; i++) {
            // Three rows per timestamp: pages must break ties by id.
            const prediction = makePrediction(account, { created_at: at(Math.floor(i / 3)) });
            predictions.push(prediction);
            await store.insertPrediction(prediction);
          }
          for (let i = 0; i < 5; i++) {
            await store.insertPrediction(makePrediction(account, { kind: "training", created_at: at(i) }));
            await store.insertPrediction(makePrediction(other, { created_at: at(i) }));
          }
          const expected = [...predictions].sort(newestFirst).map((p) => p.id);
          for (const limit of [1, 7, 100, 500]) {
            if (limit === 1) {
              // One-row pages over the first few items only: the walk is long.
              const first = await store.listPredictions({
                account_id: account.id,
                kind: "prediction",
                limit: 1,
              });
              assert.deepEqual(
                first.items.map((p) => p.id),
                expected.slice(0, 1),
              );
              assert.notEqual(first.next, null);
              continue;
            }
            const listed = await collectPages(
              (page) => store.listPredictions({ ...page, account_id: account.id, kind: "prediction" }),
              limit,
            );
            assert.deepEqual(
              listed.map((p) => p.id),
              expected,
              `limit ${limit}`,
            );
          }
          const first = await store.listPredictions({
            account_id: account.id,
            kind: "prediction",
            limit: 100,
          });
          assert.equal(first.items.length, 100);
          assert.deepEqual(
            first.items[0],
            predictions.find((p) => p.id === expected[0]),
          );
          const trainings = await store.listPredictions({
            account_id: account.id,
            kind: "training",
            limit: 100,
          });
          assert.equal(trainings.items.length, 5);
          assert.equal(trainings.next, null);
          assert.ok(trainings.items.every((p) => p.kind === "training"));
          const others = await store.listPredictions({
            account_id: other.id,
            kind: "prediction",
            limit: 100,
          });
          assert.equal(others.items.length, 5);
        }));

      it("filters the list by created_after (inclusive) and created_before (exclusive)", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const predictions = [];
          for (let i = 0; i < 10; i++) {
            const prediction = makePrediction(account, { created_at: at(i) });
            predictions.push(prediction);
            await store.insertPrediction(prediction);
          }
          const listed = await collectPages(
            (page) =>
              store.listPredictions({
                ...page,
                account_id: account.id,
                kind: "prediction",
                created_after: at(3),
                created_before: at(7),
              }),
            2,
          );
          assert.deepEqual(
            listed.map((p) => p.created_at),
            [at(6), at(5), at(4), at(3)],
          );
        }));

      it("inserts outbox rows and the idempotency record with the prediction", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          const outbox = [
            makeOutbox(prediction, { event: "start" }),
            makeOutbox(prediction, { created_at: at(11) }),
          ];
          const idempotency = {
            account_id: account.id,
            key: "key-1",
            request_hash: "h".repeat(64),
            prediction_id: prediction.id,
            created_at: at(10),
          };
          await store.insertPrediction(prediction, { outbox, idempotency });
          assert.deepEqual(await store.getPrediction(prediction.id), prediction);
          assert.deepEqual(await store.getIdempotency(account.id, "key-1"), idempotency);
          assert.equal(await store.getIdempotency(account.id, "key-2"), undefined);
          assert.deepEqual(
            await store.listOutbox(prediction.id),
            outbox.map((row) => ({ ...row, attempts: 0, status: "pending", last_error: null })),
          );
        }));

      it("rejects a reused idempotency key with IDEMPOTENCY_CONFLICT and writes nothing", () =>
        withStore(async (store) => {
          const account = makeAccount();
          const other = makeAccount();
          await store.createAccount(account);
          await store.createAccount(other);
          const first = makePrediction(account);
          const record = (p: PredictionRecord, accountId = account.id) => ({
            account_id: accountId,
            key: "same-key",
            request_hash: "x",
            prediction_id: p.id,
            created_at: at(10),
          });
          await store.insertPrediction(first, { idempotency: record(first) });
          const second = makePrediction(account);
          await assert.rejects(
            store.insertPrediction(second, { outbox: [makeOutbox(second)], idempotency: record(second) }),
            (error: unknown) => (error as { code?: unknown }).code === "IDEMPOTENCY_CONFLICT",
          );
          assert.equal(
            await store.getPrediction(second.id),
            undefined,
            "the conflicting prediction was stored",
          );
          assert.deepEqual(await store.listOutbox(second.id), [], "the conflicting outbox rows were stored");
          assert.equal((await store.getIdempotency(account.id, "same-key"))?.prediction_id, first.id);
          // Keys are per account.
          const third = makePrediction(other);
          await store.insertPrediction(third, { idempotency: record(third, other.id) });
          assert.equal((await store.getIdempotency(other.id, "same-key"))?.prediction_id, third.id);
          // Concurrent inserts with one key: exactly one wins.
          const racers = [1, 2, 3, 4].map(() => makePrediction(account));
          const results = await Promise.allSettled(
            racers.map((p) => store.insertPrediction(p, { idempotency: { ...record(p), key: "race" } })),
          );
          assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
          const stored = await Promise.all(racers.map((p) => store.getPrediction(p.id)));
          assert.equal(stored.filter((p) => p !== undefined).length, 1);
        }));

      it("deletes idempotency records older than a time", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          for (let i = 0; i < 5; i++) {
            const p = makePrediction(account);
            await store.insertPrediction(p, {
              idempotency: {
                account_id: account.id,
                key: `k${i}`,
                request_hash: "h",
                prediction_id: p.id,
                created_at: at(i),
              },
            });
          }
          assert.equal(await store.deleteIdempotencyBefore(at(3)), 3);
          assert.equal(await store.getIdempotency(account.id, "k2"), undefined);
          assert.notEqual(await store.getIdempotency(account.id, "k3"), undefined);
          assert.equal(await store.deleteIdempotencyBefore(at(3)), 0);
        }));

      it("applies a patch only when the fence holds, with its outbox rows", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          await store.insertPrediction(prediction);

          const started = await store.updatePrediction(
            prediction.id,
            { status: "processing", started_at: at(11), attempt: 1 },
            { statuses: ["starting"] },
            [makeOutbox(prediction, { event: "start" })],
          );
          const expectedStarted = {
            ...prediction,
            status: "processing" as const,
            started_at: at(11),
            attempt: 1,
          };
          assert.deepEqual(started, expectedStarted);
          assert.deepEqual(await store.getPrediction(prediction.id), expectedStarted);
          assert.equal((await store.listOutbox(prediction.id)).length, 1);

          // A stale worker (attempt 0) and a wrong status change nothing and queue no webhook.
          const stale = await store.updatePrediction(
            prediction.id,
            { status: "failed", error: "stale", completed_at: at(12) },
            { statuses: ["processing"], attempt: 0 },
            [makeOutbox(prediction)],
          );
          assert.equal(stale, undefined);
          const wrongStatus = await store.updatePrediction(
            prediction.id,
            { logs: "x" },
            { statuses: ["starting", "succeeded"] },
            [makeOutbox(prediction)],
          );
          assert.equal(wrongStatus, undefined);
          assert.deepEqual(await store.getPrediction(prediction.id), expectedStarted);
          assert.equal((await store.listOutbox(prediction.id)).length, 1);

          const logged = await store.updatePrediction(
            prediction.id,
            { logs: "step 1\n", output: ["partial"] },
            { statuses: ["processing"], attempt: 1 },
          );
          assert.equal(logged?.logs, "step 1\n");
          assert.deepEqual(logged?.output, ["partial"]);

          const done = await store.updatePrediction(
            prediction.id,
            {
              status: "succeeded",
              output: { images: ["a.png"] },
              completed_at: at(13),
              metrics: { predict_time: 2.5 },
              version_id: "version-2",
            },
            { statuses: ["starting", "processing"], attempt: 1 },
            [makeOutbox(prediction), makeOutbox(prediction, { event: "output" })],
          );
          const expectedDone = {
            ...expectedStarted,
            logs: "step 1\n",
            status: "succeeded" as const,
            output: { images: ["a.png"] },
            completed_at: at(13),
            metrics: { predict_time: 2.5 },
            version_id: "version-2",
          };
          assert.deepEqual(done, expectedDone);
          assert.deepEqual(await store.getPrediction(prediction.id), expectedDone);
          assert.equal((await store.listOutbox(prediction.id)).length, 3);

          // Data removal: input and output cleared, flag set.
          const removed = await store.updatePrediction(
            prediction.id,
            { input: null, output: null, data_removed: true },
            { statuses: ["succeeded"] },
          );
          assert.deepEqual(removed, { ...expectedDone, input: null, output: null, data_removed: true });
          // The finished record read above may be served from memory; a write through the store shows at once.
          assert.deepEqual(await store.getPrediction(prediction.id), removed);
          assert.equal(
            await store.updatePrediction("missing", { logs: "x" }, { statuses: ["starting"] }),
            undefined,
          );
        }));

      it("inserts the output files given with an update in its transaction, whether or not the fence holds", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          await store.insertPrediction(prediction);
          const output = makeFile(account, { metadata: { prediction_id: prediction.id } });
          const done = await store.updatePrediction(
            prediction.id,
            { status: "succeeded", output: `https://files/${output.id}`, completed_at: at(13) },
            { statuses: ["starting"] },
            [makeOutbox(prediction)],
            undefined,
            [output],
          );
          assert.equal(done?.status, "succeeded");
          assert.deepEqual(await store.getFile(output.id), output);
          assert.equal((await store.listOutbox(prediction.id)).length, 1);
          // The fence fails (already succeeded): the prediction and its webhooks are unchanged, but the
          // file, whose blob was stored, gets its record (it is listed, expires and can be deleted).
          const late = makeFile(account);
          const stale = await store.updatePrediction(
            prediction.id,
            { status: "canceled", output: `https://files/${late.id}` },
            { statuses: ["starting", "processing"] },
            [makeOutbox(prediction)],
            undefined,
            [late],
          );
          assert.equal(stale, undefined);
          assert.equal((await store.getPrediction(prediction.id))?.status, "succeeded");
          assert.equal((await store.listOutbox(prediction.id)).length, 1);
          assert.deepEqual(await store.getFile(late.id), late);
        }));

      it("with the current record given, returns it patched without reading back, fenced the same", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          await store.insertPrediction(prediction);
          const patch = { status: "processing" as const, started_at: at(11), attempt: 1 };
          const started = await store.updatePrediction(
            prediction.id,
            patch,
            { statuses: ["starting"], attempt: 0 },
            [makeOutbox(prediction, { event: "start" })],
            prediction,
          );
          assert.deepEqual(started, { ...prediction, ...patch });
          assert.deepEqual(await store.getPrediction(prediction.id), started);
          assert.equal((await store.listOutbox(prediction.id)).length, 1);

          // The fence still decides: a stale attempt changes nothing, writes no outbox row, returns undefined.
          const stale = await store.updatePrediction(
            prediction.id,
            { status: "failed", error: "stale" },
            { statuses: ["processing"], attempt: 0 },
            [makeOutbox(prediction)],
            started,
          );
          assert.equal(stale, undefined);
          assert.equal((await store.listOutbox(prediction.id)).length, 1);

          const done = await store.updatePrediction(
            prediction.id,
            {
              status: "succeeded",
              output: ["a", { b: 1 }],
              completed_at: at(12),
              metrics: { predict_time: 1 },
            },
            { statuses: ["processing"], attempt: 1 },
            undefined,
            started,
          );
          assert.deepEqual(await store.getPrediction(prediction.id), done);
        }));

      it("lets exactly one of two racing workers through a fence", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          await store.insertPrediction(prediction);
          const results = await Promise.all(
            [1, 2, 3].map((worker) =>
              store.updatePrediction(
                prediction.id,
                { status: "processing", attempt: worker },
                { statuses: ["starting"], attempt: 0 },
                [makeOutbox(prediction, { event: "start" })],
              ),
            ),
          );
          assert.equal(results.filter((r) => r !== undefined).length, 1);
          assert.equal((await store.listOutbox(prediction.id)).length, 1);
        }));

      it("lists unfinished predictions and trainings, oldest first", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const statuses = ["starting", "processing", "succeeded", "failed", "canceled", "aborted"] as const;
          const live: PredictionRecord[] = [];
          for (let i = 0; i < 12; i++) {
            const status = statuses[i % statuses.length]!;
            const p = makePrediction(account, {
              status,
              kind: i % 4 === 0 ? "training" : "prediction",
              created_at: at(100 - i),
            });
            if (status === "starting" || status === "processing") live.push(p);
            await store.insertPrediction(p);
          }
          const unfinished = await store.listUnfinishedPredictions();
          assert.deepEqual(
            unfinished.map((p) => p.id),
            [...live]
              .sort(newestFirst)
              .reverse()
              .map((p) => p.id),
          );
        }));

      it("lists terminal predictions for retention", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const old1 = makePrediction(account, { status: "succeeded", completed_at: at(10) });
          const old2 = makePrediction(account, { status: "failed", completed_at: at(11), kind: "training" });
          const old3 = makePrediction(account, { status: "canceled", completed_at: at(12) });
          const recent = makePrediction(account, { status: "succeeded", completed_at: at(50) });
          const removed = makePrediction(account, {
            status: "succeeded",
            completed_at: at(5),
            data_removed: true,
          });
          const running = makePrediction(account, { status: "processing", completed_at: null });
          for (const p of [old3, recent, old1, removed, running, old2]) await store.insertPrediction(p);
          const due = await store.listPredictionsForRetention(at(20), 10);
          assert.deepEqual(
            due.map((p) => p.id),
            [old1.id, old2.id, old3.id],
          );
          assert.equal((await store.listPredictionsForRetention(at(20), 2)).length, 2);
          await store.updatePrediction(
            old1.id,
            { data_removed: true, input: null },
            { statuses: ["succeeded"] },
          );
          assert.deepEqual(
            (await store.listPredictionsForRetention(at(20), 10)).map((p) => p.id),
            [old2.id, old3.id],
          );
        }));
    });

    describe("deployments", () => {
      it("creates with a first release, adds releases, pages and deletes", () =>
        withStore(async (store) => {
          const owner = makeAccount();
          const other = makeAccount();
          await store.createAccount(owner);
          await store.createAccount(other);
          const model = makeModel(owner);
          await store.createModel(model);
          const version = makeVersion(model);
          await store.createVersion(version);
          const deployment = makeDeployment(owner);
          const first = makeRelease(deployment, version);
          await store.createDeployment(deployment, first);
          assert.deepEqual(await store.getDeployment(owner.username, deployment.name), deployment);
          assert.equal(await store.getDeployment(owner.username, "missing"), undefined);
          assert.deepEqual(await store.getCurrentRelease(deployment.id), first);
          const second = makeRelease(deployment, version, {
            number: 2,
            min_instances: 1,
            max_instances: 5,
            created_at: at(9),
          });
          await store.addRelease(second);
          assert.deepEqual(await store.getCurrentRelease(deployment.id), second);
          await assert.rejects(store.addRelease(second), "a duplicate release number must be rejected");
          await assert.rejects(
            store.createDeployment(makeDeployment(owner, { name: deployment.name }), first),
            "a duplicate owner/name must be rejected",
          );

          const many = [deployment];
          for (let i = 0; i < 24; i++) {
            const d = makeDeployment(owner, { created_at: at(Math.floor(i / 2)) });
            many.push(d);
            await store.createDeployment(d, makeRelease(d, version));
          }
          const others = makeDeployment(other);
          await store.createDeployment(others, makeRelease(others, version));
          const listed = await collectPages((page) => store.listDeployments(owner.id, page), 5);
          assert.deepEqual(
            listed.map((d) => d.id),
            [...many].sort(newestFirst).map((d) => d.id),
          );

          await store.deleteDeployment(deployment.id);
          assert.equal(await store.getDeployment(owner.username, deployment.name), undefined);
          assert.equal(await store.getCurrentRelease(deployment.id), undefined);
        }));
    });

    describe("files", () => {
      it("creates, reads, pages, deletes and finds expired files", () =>
        withStore(async (store) => {
          const account = makeAccount();
          const other = makeAccount();
          await store.createAccount(account);
          await store.createAccount(other);
          const files = [];
          for (let i = 0; i < 30; i++) {
            const file = makeFile(account, {
              created_at: at(Math.floor(i / 3)),
              expires_at: i % 2 === 0 ? at(100 + i) : null,
              size: 10_000_000_000 + i,
            });
            files.push(file);
            await store.createFile(file);
          }
          await store.createFile(makeFile(other, { expires_at: at(0) }));
          const first = files[0]!;
          assert.deepEqual(await store.getFile(first.id), first);
          assert.equal(await store.getFile("missing"), undefined);
          const listed = await collectPages((page) => store.listFiles(account.id, page), 4);
          assert.deepEqual(
            listed.map((f) => f.id),
            [...files].sort(newestFirst).map((f) => f.id),
          );

          const expired = await store.listExpiredFiles(at(110), 100);
          assert.deepEqual(new Set(expired.map((f) => f.account_id)), new Set([account.id, other.id]));
          assert.equal(
            expired.length,
            1 + files.filter((f) => f.expires_at !== null && f.expires_at <= at(110)).length,
          );
          assert.ok(expired.every((f) => f.expires_at !== null && f.expires_at <= at(110)));
          assert.equal((await store.listExpiredFiles(at(110), 2)).length, 2);

          assert.equal(await store.deleteFile(first.id), true);
          assert.equal(await store.deleteFile(first.id), false);
          assert.equal(await store.getFile(first.id), undefined);
        }));
    });

    describe("collections", () => {
      it("upserts, reads in order, pages and searches", () =>
        withStore(async (store) => {
          const collection = {
            slug: "text-to-image",
            name: "Text to image",
            description: "Make images",
            full_description: null,
          };
          await store.upsertCollection(collection, ["m3", "m1", "m2"]);
          assert.deepEqual(await store.getCollection("text-to-image"), {
            collection,
            model_ids: ["m3", "m1", "m2"],
          });
          const renamed = { ...collection, name: "Text → image", full_description: "Long" };
          await store.upsertCollection(renamed, ["m2", "m4"]);
          assert.deepEqual(await store.getCollection("text-to-image"), {
            collection: renamed,
            model_ids: ["m2", "m4"],
          });
          assert.equal(await store.getCollection("missing"), undefined);

          const slugs = ["text-to-image"];
          for (let i = 0; i < 11; i++) {
            const slug = `collection-${String(i).padStart(2, "0")}`;
            slugs.push(slug);
            await store.upsertCollection(
              {
                slug,
                name: `Collection ${i}`,
                description: i === 5 ? "Upscale IMAGES" : "other",
                full_description: null,
              },
              [],
            );
          }
          const listed = await collectPages((page) => store.listCollections(page), 3);
          const listedSlugs = listed.map((c) => c.slug);
          assert.equal(new Set(listedSlugs).size, listedSlugs.length);
          assert.deepEqual(new Set(listedSlugs), new Set(slugs));
          assert.deepEqual(
            new Set((await store.searchCollections("images", 10)).map((c) => c.slug)),
            new Set(["text-to-image", "collection-05"]),
          );
          assert.equal((await store.searchCollections("collection", 4)).length, 4);
        }));
    });

    describe("outbox", () => {
      it("claims due rows, skips claimed ones until their claim expires, and records outcomes", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          const due = [1, 2, 3].map((i) =>
            makeOutbox(prediction, { next_attempt_at: at(i), created_at: at(i) }),
          );
          const later = makeOutbox(prediction, { next_attempt_at: at(100), created_at: at(4) });
          await store.insertPrediction(prediction, { outbox: [...due, later] });

          const claimed = await store.claimOutbox(at(10), 10, 30_000);
          assert.deepEqual(new Set(claimed.map((r) => r.id)), new Set(due.map((r) => r.id)));
          assert.ok(claimed.every((r) => r.status === "delivering"));
          const original = due.find((r) => r.id === claimed[0]!.id)!;
          assert.equal(claimed[0]!.body, original.body);
          assert.equal(claimed[0]!.webhook_id, original.webhook_id);
          assert.equal(claimed[0]!.url, original.url);
          assert.deepEqual(
            await store.claimOutbox(at(11), 10, 30_000),
            [],
            "claimed rows were handed out again",
          );

          const [d1, d2, d3] = due;
          await store.finishOutbox(d1!.id, { status: "delivered", attempts: 1 });
          await store.finishOutbox(d2!.id, { status: "failed", attempts: 1, last_error: "HTTP 410" });
          await store.finishOutbox(d3!.id, {
            status: "pending",
            attempts: 1,
            last_error: "HTTP 500",
            next_attempt_at: at(50),
          });
          const rows = new Map((await store.listOutbox(prediction.id)).map((r) => [r.id, r]));
          assert.equal(rows.get(d1!.id)?.status, "delivered");
          assert.equal(rows.get(d1!.id)?.attempts, 1);
          assert.equal(rows.get(d2!.id)?.status, "failed");
          assert.equal(rows.get(d2!.id)?.last_error, "HTTP 410");
          assert.equal(rows.get(d3!.id)?.status, "pending");
          assert.equal(rows.get(d3!.id)?.next_attempt_at, at(50));
          assert.equal(rows.get(d3!.id)?.last_error, "HTTP 500");

          assert.deepEqual(
            await store.claimOutbox(at(49), 10, 30_000),
            [],
            "a retry was claimed before it was due",
          );
          const retry = await store.claimOutbox(at(50), 10, 30_000);
          assert.deepEqual(
            retry.map((r) => r.id),
            [d3!.id],
          );
          assert.equal(retry[0]?.attempts, 1);
          await store.finishOutbox(d3!.id, { status: "delivered", attempts: 2 });
          const all = await store.claimOutbox(at(200), 10, 30_000);
          assert.deepEqual(
            all.map((r) => r.id),
            [later.id],
            "delivered, failed and freshly claimed rows must not be claimed",
          );
        }));

      it("re-claims a delivering row whose claim expired", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          const row = makeOutbox(prediction, { next_attempt_at: at(0) });
          await store.insertPrediction(prediction, { outbox: [row] });
          assert.equal((await store.claimOutbox(at(1), 10, 5_000)).length, 1);
          assert.equal(
            (await store.claimOutbox(at(5), 10, 5_000)).length,
            0,
            "re-claimed before the claim expired",
          );
          const reclaimed = await store.claimOutbox(at(7), 10, 5_000);
          assert.deepEqual(
            reclaimed.map((r) => r.id),
            [row.id],
          );
          assert.equal(reclaimed[0]?.status, "delivering");
        }));

      it("never hands one row to two concurrent claimers", () =>
        withStore(async (store) => {
          const account = makeAccount();
          await store.createAccount(account);
          const prediction = makePrediction(account);
          const rows = Array.from({ length: 40 }, (_, i) =>
            makeOutbox(prediction, { next_attempt_at: at(i % 5) }),
          );
          await store.insertPrediction(prediction, { outbox: rows });
          const claims = await Promise.all(
            [1, 2, 3, 4, 5, 6].map(() => store.claimOutbox(at(10), 8, 60_000)),
          );
          const ids = claims.flat().map((r) => r.id);
          assert.equal(new Set(ids).size, ids.length, "a row was claimed twice");
          assert.equal(ids.length, 40);
          assert.ok(
            claims.every((c) => c.length <= 8),
            "a claim exceeded its limit",
          );
        }));
    });
  });
}
