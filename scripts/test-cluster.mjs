// Runs the API test suites (the official `replicate` client's included) against a scale-out cluster:
// with REPLICANT_TEST_BACKEND=cluster, startTestServer starts 2 API and 2 worker processes of
// `replicant serve` on PostgreSQL, Redis and s3rver behind a round-robin proxy (packages/testing/src/cluster.ts).
// Skips, with a line saying so, when PostgreSQL or Redis is unreachable. Run `npm run build` first.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";

const FILES = [
  "packages/testing/dist/test/replicate-client.test.js",
  "packages/testing/dist/test/api-operations.test.js",
  "packages/testing/dist/test/api-errors.test.js",
  "packages/testing/dist/test/api-lifecycle.test.js",
  "packages/testing/dist/test/push-bundle.test.js",
  "packages/testing/dist/test/cog-backed.test.js",
  "packages/sdk/dist/test/server.test.js",
  "packages/sdk/dist/test/replicate-readme.test.js",
];
const PG_URL = process.env.REPLICANT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.REPLICANT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

function reachable(url, defaultPort) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || defaultPort) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

const [pgUp, redisUp] = await Promise.all([reachable(PG_URL, 5432), reachable(REDIS_URL, 6379)]);
if (!pgUp || !redisUp) {
  const missing = [pgUp ? undefined : `PostgreSQL (${PG_URL})`, redisUp ? undefined : `Redis (${REDIS_URL})`];
  console.log(`# cluster suites skipped: ${missing.filter(Boolean).join(" and ")} unreachable`);
  process.exit(0);
}
const filter = process.argv.slice(2);
const selected = filter.length ? FILES.filter((f) => filter.some((x) => f.includes(x))) : FILES;
if (selected.length === 0) {
  // With no file, `node --test` would run every test it can find, in cluster mode.
  console.error(`no cluster suite matches ${filter.join(", ")}: the suites are ${FILES.join(", ")}`);
  process.exit(1);
}
const absent = selected.filter((f) => !existsSync(f));
if (absent.length > 0) {
  console.error(`not built: ${absent.join(", ")} (run \`npm run build\` first)`);
  process.exit(1);
}
console.log(
  `# cluster suites: ${selected.length} files against 2 API + 2 worker processes (PostgreSQL, Redis, s3rver)`,
);
const started = Date.now();
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=2", ...selected], {
  stdio: "inherit",
  env: { ...process.env, REPLICANT_TEST_BACKEND: "cluster" },
});
console.log(`# cluster suites took ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(result.status ?? 1);
