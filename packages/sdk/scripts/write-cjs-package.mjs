// Marks dist/cjs as CommonJS, so Node loads its .js files with require() semantics even though this
// package is "type": "module".
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const directory = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "cjs");
mkdirSync(directory, { recursive: true });
writeFileSync(join(directory, "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`);
