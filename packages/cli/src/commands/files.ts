import { createWriteStream } from "node:fs";
import { basename, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import type { FileObject } from "@replicant/sdk";
import {
  dispatch,
  LIST_HELP,
  LIST_OPTIONS,
  OUTPUT_HELP,
  OUTPUT_OPTIONS,
  parseCommand,
  parseLimit,
  type Subcommand,
  subcommandList,
  wantsJson,
} from "../args.js";
import { withConnection } from "../connect.js";
import { EXIT, usageError } from "../errors.js";
import type { CliIo } from "../io.js";
import { extensionFor, formatBytes, printJson } from "../outputs.js";
import { collect, printTable, shortDate } from "../table.js";

const SUBCOMMANDS: Record<string, Subcommand> = {
  upload: { summary: "Upload a file (prints its id and URL, usable as a model input)", run: upload },
  list: { summary: "List your files", run: list },
  get: { summary: "Show a file's metadata", run: get },
  download: { summary: "Download a file's bytes", run: download },
  delete: { summary: "Delete a file", run: remove },
};

const HELP = `Usage: replicant files <command> [options]

Commands:
${subcommandList(SUBCOMMANDS)}

Examples:
  replicant files upload photo.png --metadata '{"purpose":"test"}'
  replicant files download FILE_ID -o copy.png
`;

export function main(argv: string[], io: CliIo): Promise<number> {
  return dispatch("files", argv, io, HELP, SUBCOMMANDS);
}

function printFile(io: CliIo, file: FileObject, json: boolean): void {
  if (json) {
    printJson(io, file);
    return;
  }
  io.stdout.write(
    `${file.id}  ${file.name ?? ""}  ${file.content_type}  ${formatBytes(file.size)}\n  url: ${file.urls.get}\n` +
      (file.expires_at ? `  expires: ${shortDate(file.expires_at)}\n` : ""),
  );
}

async function upload(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant files upload PATH [--metadata JSON] [--content-type TYPE] [--json|--text]

Options:
  --metadata JSON          a JSON object stored with the file
  --content-type TYPE      default: from the extension
${OUTPUT_HELP}
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    { metadata: { type: "string" }, "content-type": { type: "string" }, ...OUTPUT_OPTIONS },
    { min: 1, max: 1 },
  );
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  let metadata: Record<string, unknown> = {};
  if (values.metadata) {
    try {
      metadata = JSON.parse(values.metadata) as Record<string, unknown>;
    } catch {
      throw usageError(`--metadata must be a JSON object, got ${values.metadata}`);
    }
  }
  const path = resolve(io.cwd, parsed.positionals[0]!);
  const { fromPath } = await import("@replicant/sdk");
  return withConnection(io, async ({ client }) => {
    const file = await client.files.create(fromPath(path), metadata, {
      filename: basename(path),
      ...(values["content-type"] ? { contentType: values["content-type"] } : {}),
    });
    printFile(io, file, wantsJson(values, io));
    return EXIT.ok;
  });
}

async function list(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    `Usage: replicant files list [--limit N | --all] [--json|--text]\n\nOptions:\n${LIST_HELP}\n${OUTPUT_HELP}\n`,
    { ...LIST_OPTIONS, ...OUTPUT_OPTIONS },
    { max: 0 },
  );
  if (!parsed) return EXIT.ok;
  const limit = parseLimit(parsed.values);
  return withConnection(io, async ({ client }) => {
    const items = await collect(client.files.list(), limit);
    if (wantsJson(parsed.values, io)) printJson(io, items);
    else
      printTable(
        io,
        ["ID", "NAME", "TYPE", "SIZE", "CREATED"],
        items.map((f) => [f.id, f.name ?? "", f.content_type, formatBytes(f.size), shortDate(f.created_at)]),
      );
    return EXIT.ok;
  });
}

async function get(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(argv, io, "Usage: replicant files get ID [--json|--text]\n", OUTPUT_OPTIONS, {
    min: 1,
    max: 1,
  });
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client }) => {
    printFile(io, await client.files.get(parsed.positionals[0]!), wantsJson(parsed.values, io));
    return EXIT.ok;
  });
}

async function download(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant files download ID [-o PATH]

Writes the file to PATH (default: its name, else ID.<ext>, in the current directory); -o - writes to stdout.
`;
  const parsed = parseCommand(argv, io, help, { output: { type: "string", short: "o" } }, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client }) => {
    const file = await client.files.get(parsed.positionals[0]!);
    const response = await client.files.download(file);
    const target = parsed.values.output;
    const body = response.body
      ? Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>)
      : Readable.from([]);
    if (target === "-") {
      for await (const chunk of body) io.stdout.write(chunk as Uint8Array);
      return EXIT.ok;
    }
    const name =
      target ??
      (file.name ? basename(file.name) : `${file.id}.${extensionFor(file.content_type, file.urls.get)}`);
    const path = resolve(io.cwd, name);
    await pipeline(body, createWriteStream(path));
    io.stderr.write(`replicant: saved ${name} (${formatBytes(file.size)})\n`);
    return EXIT.ok;
  });
}

async function remove(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(argv, io, "Usage: replicant files delete ID\n", {}, { min: 1, max: 1 });
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client }) => {
    await client.files.delete(parsed.positionals[0]!);
    io.stdout.write(`deleted ${parsed.positionals[0]}\n`);
    return EXIT.ok;
  });
}
