import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const sourceRoot = join(packageRoot, "src");

function sourceFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

describe("package shape", () => {
  test("the core has no static node: imports and no Buffer/process globals; Node code sits in src/node", () => {
    for (const file of sourceFiles(sourceRoot)) {
      const name = relative(sourceRoot, file);
      if (name.startsWith("node/")) continue;
      const text = readFileSync(file, "utf8");
      assert.doesNotMatch(text, /from\s+["']node:/, `${name} imports a node: module`);
      assert.doesNotMatch(text, /\bimport\(\s*["']node:/, `${name} imports a node: module`);
      assert.doesNotMatch(text, /\bBuffer\./, `${name} uses Buffer`);
      assert.doesNotMatch(text, /(?<![.\w])process\./, `${name} touches process directly`);
    }
    const dynamicImports = sourceFiles(sourceRoot).flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(/import\(["']([^"']+)["']\)/g)].map((match) => match[1]),
    );
    assert.ok(dynamicImports.every((specifier) => specifier === "../node/paths.js"));
  });

  test("no runtime dependencies besides the workspace's protocol types", () => {
    const manifest = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      exports: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(manifest.dependencies), ["@replicant/protocol"]);
    const importedValues = sourceFiles(sourceRoot).filter((file) =>
      /^import\s+\{[^}]*\}\s+from\s+"@replicant\/protocol"/m.test(readFileSync(file, "utf8")),
    );
    assert.deepEqual(
      importedValues,
      [],
      "protocol is imported for types only, so the CommonJS build needs no ESM",
    );
    assert.ok(manifest.exports["."], "an exports map");
  });

  test("the CommonJS build loads with require() when built (npm run build:cjs)", (context) => {
    if (!existsSync(join(packageRoot, "dist", "cjs", "index.js"))) {
      context.skip("dist/cjs not built");
      return;
    }
    const script = `
      const sdk = require("@replicant/sdk");
      const client = new sdk.Replicant({ auth: "x" });
      if (typeof client.run !== "function" || sdk.default !== sdk.Replicant) process.exit(2);
      if (!(new sdk.FileOutput("data:,hi") instanceof ReadableStream)) process.exit(3);
    `;
    const result = spawnSync(process.execPath, ["-e", script], { cwd: packageRoot, encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
  });
});
