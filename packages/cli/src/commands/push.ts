import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Replicant } from "@replicant/sdk";
import { parseCommand, parseModelName } from "../args.js";
import { type Connection, withConnection } from "../connect.js";
import { CliError, EXIT, usageError } from "../errors.js";
import type { CliIo } from "../io.js";
import { resolvePredictor } from "../predictor-dir.js";

const HELP = `Usage: replicant push OWNER/NAME [DIR] [--cog-url URL | --gguf FILE [--embeddings]]

Registers a new version of OWNER/NAME on a server (the model is created, private, if it does not exist):
  DIR              a TypeScript predictor directory: its replicant.json names the compiled predictor
                   ({"predictor": "dist/predict.js", "hardware": "cpu", "env": {"NAME": "value"}}); it is
                   packed and uploaded, and runs contained in runner processes on the server, which see
                   only the env it declares (default DIR: .). Needs the push permission on the server
  --cog-url URL    a running Cog-protocol server (Cog or \`replicant serve-model\`): the version's schema
                   comes from URL/openapi.json and its predictions are sent there
  --gguf FILE      a language model in GGUF format, served by the built-in llm-gguf runner with the usual
                   inputs (prompt, system_prompt, max_tokens, temperature, top_p, top_k, stop_sequences, seed);
                   add --embeddings for an embeddings model instead

Examples:
  replicant push local/my-model ./my-model
  replicant push local/cog-model --cog-url http://127.0.0.1:5000
  replicant push local/tiny-llama --gguf ./tiny.gguf
`;

const UPLOAD_LIMIT = 100 * 1024 * 1024;

async function ensureModel(
  client: Replicant,
  owner: string,
  name: string,
  hardware: string,
  io: CliIo,
): Promise<void> {
  try {
    await client.models.get(owner, name);
  } catch (error) {
    if ((error as { status?: number }).status !== 404) throw error;
    await client.models.create(owner, name, { visibility: "private", hardware });
    io.stderr.write(`Created the private model ${owner}/${name}\n`);
  }
}

async function createVersion(
  connection: Connection,
  owner: string,
  name: string,
  body: Record<string, unknown>,
) {
  return connection.client.post<{ id: string }>(`/replicant/models/${owner}/${name}/versions`, {
    data: body,
  });
}

async function upload(client: Replicant, path: string, contentType: string): Promise<string> {
  const bytes = await readFile(path);
  const file = await client.files.create(
    new Blob([bytes], { type: contentType }),
    {},
    { filename: path.split("/").at(-1) ?? "upload" },
  );
  return file.id;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    HELP,
    {
      "cog-url": { type: "string" },
      gguf: { type: "string" },
      embeddings: { type: "boolean", default: false },
    },
    { min: 1, max: 2 },
  );
  if (!parsed) return EXIT.ok;
  const { owner, name } = parseModelName(parsed.positionals[0] ?? "");
  const cogUrl = parsed.values["cog-url"];
  const gguf = parsed.values.gguf;
  if (cogUrl && gguf) throw usageError("give one of DIR, --cog-url or --gguf");
  if ((cogUrl || gguf) && parsed.positionals[1]) throw usageError("give one of DIR, --cog-url or --gguf");

  // Work that needs no server comes first, so a mistake is reported before anything is created.
  let bundle:
    | {
        archive: string;
        cleanup: () => Promise<void>;
        predictor: string;
        schema: unknown;
        hardware: string;
        env: Record<string, string> | undefined;
        network: boolean | undefined;
      }
    | undefined;
  if (!cogUrl && !gguf) {
    const { dir, predictorPath, manifest } = await resolvePredictor(parsed.positionals[1] ?? ".");
    const runtime = await import("@replicant/runtime");
    const module = (await import(pathToFileURL(predictorPath).href)) as { default?: unknown };
    if (!runtime.isPredictor(module.default))
      throw usageError(
        `${manifest.predictor} does not export a predictor (definePredictor) as its default export`,
      );
    const schema = runtime.generateOpenApiSchema(module.default);
    const temp = await mkdtemp(join(tmpdir(), "replicant-push-"));
    const archive = join(temp, "bundle.tar.gz");
    const { create } = await import("tar");
    await create(
      {
        gzip: true,
        file: archive,
        cwd: dir,
        portable: true,
        // The server links its own @replicant/runtime into the bundle; VCS data is not needed.
        filter: (path) =>
          !/(^|\/)\.git(\/|$)/.test(path) && !/node_modules\/@replicant\/runtime(\/|$)/.test(path),
      },
      ["."],
    );
    if ((await stat(archive)).size > UPLOAD_LIMIT) {
      await rm(temp, { recursive: true, force: true });
      throw usageError(`the packed directory is over 100 MB; leave large files (weights) out of ${dir}`);
    }
    bundle = {
      archive,
      cleanup: () => rm(temp, { recursive: true, force: true }),
      predictor: resolve(predictorPath).slice(dir.length + 1),
      schema,
      hardware: manifest.hardware ?? "cpu",
      env: manifest.env,
      network: manifest.network,
    };
  }

  try {
    return await withConnection(io, async (connection) => {
      const { client } = connection;
      await ensureModel(client, owner, name, bundle?.hardware ?? "cpu", io);
      let version: { id: string };
      if (cogUrl) {
        version = await createVersion(connection, owner, name, { cog_url: cogUrl });
      } else if (gguf) {
        const path = resolve(gguf);
        const size = (await stat(path).catch(() => undefined))?.size;
        if (size === undefined) throw new CliError(`${gguf} does not exist`, EXIT.usage);
        const template = parsed.values.embeddings ? "llm-gguf-embeddings" : "llm-gguf";
        // A server on this machine reads the file where it is; others get an upload (≤ 100 MB).
        const local = connection.source === "embedded" || connection.source === "local-server";
        if (!local && size > UPLOAD_LIMIT) {
          throw new CliError(
            `${gguf} is over 100 MB: run \`replicant push\` on the server's machine, which reads it in place`,
            EXIT.usage,
          );
        }
        version = await createVersion(
          connection,
          owner,
          name,
          local
            ? { template, weights_path: path }
            : { template, weights_file: await upload(client, path, "application/octet-stream") },
        );
      } else {
        const fileId = await upload(client, bundle!.archive, "application/gzip");
        version = await createVersion(connection, owner, name, {
          bundle_file: fileId,
          predictor: bundle!.predictor,
          openapi_schema: bundle!.schema,
          ...(bundle!.env ? { env: bundle!.env } : {}),
          ...(bundle!.network !== undefined ? { network: bundle!.network } : {}),
        });
      }
      io.stdout.write(`${owner}/${name}:${version.id}\n`);
      io.stderr.write(
        `Pushed a new version of ${owner}/${name}. Run it with: replicant run ${owner}/${name} -i key=value\n`,
      );
      return EXIT.ok;
    });
  } finally {
    await bundle?.cleanup();
  }
}
