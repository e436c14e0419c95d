// Runs every compiled test file (packages/*/dist/test/*.test.js, packages/models/*/dist/test/*.test.js)
// with Node's test runner, so helpers under test/ are never mistaken for tests.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const roots = ["packages", ...(existsSync("packages/models") ? ["packages/models"] : [])];
const files = [];
for (const root of roots) {
  for (const name of readdirSync(root)) {
    const dir = join(root, name, "dist", "test");
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir)) if (file.endsWith(".test.js")) files.push(join(dir, file));
  }
}
const filter = process.argv.slice(2);
const selected = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error("no test files found: run `npm run build` first");
  process.exit(1);
}
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=2", ...selected], {
  stdio: "inherit",
});
process.exit(result.status ?? 1);
