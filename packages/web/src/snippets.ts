/**
 * The code that runs a model with given input, in five flavours. Each snippet reads the token from
 * REPLICATE_API_TOKEN and talks to this server (`baseUrl`), so it runs as shown once that variable is set.
 */

export interface SnippetTarget {
  /** "owner/name" for a model, "owner/name:version" for a pinned version, or a deployment. */
  kind: "model" | "version" | "deployment";
  owner: string;
  name: string;
  version?: string | undefined;
}

export interface Snippet {
  id: "curl" | "sdk" | "replicate" | "cli" | "python";
  label: string;
  language: string;
  code: string;
}

/** Quotes a string for POSIX sh. */
export function shQuote(text: string): string {
  if (/^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function refOf(target: SnippetTarget): string {
  const base = `${target.owner}/${target.name}`;
  return target.kind === "version" && target.version ? `${base}:${target.version}` : base;
}

function indent(text: string, spaces: number): string {
  return text.replace(/\n/g, `\n${" ".repeat(spaces)}`);
}

/** JSON with the property names that are identifiers unquoted, as people write JavaScript. */
function jsLiteral(value: unknown, level = 0): string {
  const pad = "  ".repeat(level + 1);
  const end = "  ".repeat(level);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => pad + jsLiteral(v, level + 1)).join(",\n")},\n${end}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    const lines = entries.map(([k, v]) => {
      const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k);
      return `${pad}${key}: ${jsLiteral(v, level + 1)}`;
    });
    return `{\n${lines.join(",\n")},\n${end}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function pyLiteral(value: unknown, level = 0): string {
  const pad = "    ".repeat(level + 1);
  const end = "    ".repeat(level);
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => pad + pyLiteral(v, level + 1)).join(",\n")},\n${end}]`;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    return `{\n${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${pyLiteral(v, level + 1)}`).join(",\n")},\n${end}}`;
  }
  return JSON.stringify(value);
}

function cliValue(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function snippets(target: SnippetTarget, input: Record<string, unknown>, baseUrl: string): Snippet[] {
  const ref = refOf(target);
  const owner = target.owner;
  const name = target.name;

  let url: string;
  let body: Record<string, unknown>;
  if (target.kind === "deployment") {
    url = `${baseUrl}/deployments/${owner}/${name}/predictions`;
    body = { input };
  } else if (target.kind === "version" && target.version) {
    url = `${baseUrl}/predictions`;
    body = { version: target.version, input };
  } else {
    url = `${baseUrl}/models/${owner}/${name}/predictions`;
    body = { input };
  }
  const curl = [
    `curl -s -X POST \\`,
    `  -H "Authorization: Bearer $REPLICATE_API_TOKEN" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -H "Prefer: wait" \\`,
    `  -d ${shQuote(JSON.stringify(body, null, 2))} \\`,
    `  ${shQuote(url)}`,
  ].join("\n");

  const inputJs = indent(jsLiteral(input), 2);
  const sdk =
    target.kind === "deployment"
      ? `import { Replicant } from "@replicant/sdk";

const replicant = new Replicant({
  auth: process.env.REPLICATE_API_TOKEN,
  baseUrl: ${JSON.stringify(baseUrl)},
});

const prediction = await replicant.deployments.predictions.create(${JSON.stringify(owner)}, ${JSON.stringify(name)}, {
  input: ${inputJs},
});
const done = await replicant.wait(prediction);
console.log(done.output);
`
      : `import { Replicant } from "@replicant/sdk";

const replicant = new Replicant({
  auth: process.env.REPLICATE_API_TOKEN,
  baseUrl: ${JSON.stringify(baseUrl)},
});

const output = await replicant.run(${JSON.stringify(ref)}, {
  input: ${inputJs},
});
console.log(String(output));
`;

  const replicate =
    target.kind === "deployment"
      ? `import Replicate from "replicate";

const replicate = new Replicate({
  auth: process.env.REPLICATE_API_TOKEN,
  baseUrl: ${JSON.stringify(baseUrl)},
});

let prediction = await replicate.deployments.predictions.create(${JSON.stringify(owner)}, ${JSON.stringify(name)}, {
  input: ${inputJs},
});
prediction = await replicate.wait(prediction);
console.log(prediction.output);
`
      : `import Replicate from "replicate";

const replicate = new Replicate({
  auth: process.env.REPLICATE_API_TOKEN,
  baseUrl: ${JSON.stringify(baseUrl)},
});

const output = await replicate.run(${JSON.stringify(ref)}, {
  input: ${inputJs},
});
console.log(String(output));
`;

  const flags = Object.entries(input).map(([k, v]) => ` \\\n  -i ${shQuote(`${k}=${cliValue(v)}`)}`);
  const cli =
    target.kind === "deployment"
      ? `REPLICATE_BASE_URL=${shQuote(baseUrl)} replicant deployments run ${owner}/${name}${flags.join("")}`
      : `REPLICATE_BASE_URL=${shQuote(baseUrl)} replicant run ${ref}${flags.join("")}`;

  const inputPy = indent(pyLiteral(input), 4);
  const python =
    target.kind === "deployment"
      ? `import os
import replicate

client = replicate.Client(
    api_token=os.environ["REPLICATE_API_TOKEN"],
    base_url=${JSON.stringify(baseUrl)},
)
deployment = client.deployments.get(${JSON.stringify(`${owner}/${name}`)})
prediction = deployment.predictions.create(
    input=${inputPy},
)
prediction.wait()
print(prediction.output)
`
      : `import os
import replicate

client = replicate.Client(
    api_token=os.environ["REPLICATE_API_TOKEN"],
    base_url=${JSON.stringify(baseUrl)},
)
output = client.run(
    ${JSON.stringify(ref)},
    input=${inputPy},
)
print(output)
`;

  return [
    { id: "curl", label: "curl", language: "shell", code: curl },
    { id: "sdk", label: "@replicant/sdk", language: "javascript", code: sdk },
    { id: "replicate", label: "replicate (npm)", language: "javascript", code: replicate },
    { id: "cli", label: "CLI", language: "shell", code: cli },
    { id: "python", label: "Python", language: "python", code: python },
  ];
}
