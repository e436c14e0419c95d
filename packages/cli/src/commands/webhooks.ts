import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Prediction } from "@replicant/sdk";
import {
  dispatch,
  OUTPUT_HELP,
  OUTPUT_OPTIONS,
  parseCommand,
  type Subcommand,
  subcommandList,
  wantsJson,
} from "../args.js";
import { connect, withConnection } from "../connect.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { type CliIo, holdInterrupt } from "../io.js";
import { printJson } from "../outputs.js";

const SUBCOMMANDS: Record<string, Subcommand> = {
  secret: { summary: "Print your account's webhook signing secret", run: secret },
  verify: { summary: "Verify a webhook delivery's signature", run: verify },
  listen: {
    summary: "Receive webhooks locally, verify them, print them and forward them to your app",
    run: listen,
  },
};

const HELP = `Usage: replicant webhooks <command> [options]

Commands:
${subcommandList(SUBCOMMANDS)}

Examples:
  replicant webhooks secret
  replicant webhooks listen --forward-to http://localhost:3000/webhooks
  replicant webhooks verify --id msg_1 --timestamp 1700000000 --signature "v1,..." --body body.json
`;

export function main(argv: string[], io: CliIo): Promise<number> {
  return dispatch("webhooks", argv, io, HELP, SUBCOMMANDS);
}

async function secret(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    argv,
    io,
    `Usage: replicant webhooks secret [--json|--text]\n\nPrints the secret (whsec_...) that signs your webhooks; verify them with it.\n\nOptions:\n${OUTPUT_HELP}\n`,
    OUTPUT_OPTIONS,
    { max: 0 },
  );
  if (!parsed) return EXIT.ok;
  return withConnection(io, async ({ client }) => {
    const result = await client.webhooks.default.secret.get();
    if (wantsJson(parsed.values, io)) printJson(io, result);
    else io.stdout.write(`${result.key}\n`);
    return EXIT.ok;
  });
}

async function loadSdkWebhooks() {
  const { verifyWebhook } = await import("@replicant/sdk");
  return verifyWebhook;
}

async function verify(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant webhooks verify --id ID --timestamp TS --signature SIG [--body FILE] [options]

Checks a delivery's signature (and that its timestamp is recent) with your signing secret. The body is
read from FILE, or from stdin. Exits 0 when valid, 1 when not.

Options:
  --id ID                  the webhook-id header
  --timestamp TS           the webhook-timestamp header
  --signature SIG          the webhook-signature header
  --body FILE              the raw body (default: stdin)
  --secret whsec_...       default: your account's, fetched from the server
  --tolerance SECONDS      allowed clock distance (default 300; 0 turns the check off)
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    {
      id: { type: "string" },
      timestamp: { type: "string" },
      signature: { type: "string" },
      body: { type: "string" },
      secret: { type: "string" },
      tolerance: { type: "string", default: "300" },
    },
    { max: 0 },
  );
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  if (!values.id || !values.timestamp || !values.signature)
    throw usageError("give --id, --timestamp and --signature (the webhook-* headers of the delivery)");
  const tolerance = Number(values.tolerance);
  if (!Number.isFinite(tolerance) || tolerance < 0)
    throw usageError("--tolerance must be a number of seconds");
  const body = values.body
    ? await readFile(resolve(io.cwd, values.body), "utf8")
    : (await io.stdin.readAll()).toString("utf8");
  const key = values.secret ?? (await fetchSecret(io));
  const verifyWebhook = await loadSdkWebhooks();
  try {
    await verifyWebhook(
      { id: values.id, timestamp: values.timestamp, signature: values.signature, body },
      key,
      {
        tolerance: tolerance === 0 ? Number.POSITIVE_INFINITY : tolerance,
      },
    );
  } catch (error) {
    const reason = (error as { reason?: string }).reason ?? (error as Error).message;
    io.stdout.write(`invalid: ${reason}\n`);
    return EXIT.failed;
  }
  io.stdout.write("valid\n");
  return EXIT.ok;
}

function fetchSecret(io: CliIo): Promise<string> {
  let key = "";
  return withConnection(io, async ({ client }) => {
    key = (await client.webhooks.default.secret.get()).key;
    return EXIT.ok;
  }).then(() => key);
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > 10 * 1024 * 1024) request.destroy(new Error("body over 10 MB"));
      else chunks.push(chunk);
    });
    request.on("end", () => done(Buffer.concat(chunks)));
    request.on("error", fail);
  });
}

const FORWARDED_HEADERS = [
  "content-type",
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
  "user-agent",
];

async function listen(argv: string[], io: CliIo): Promise<number> {
  const help = `Usage: replicant webhooks listen [--forward-to URL] [--port N] [options]

Starts a local receiver for webhooks. Each delivery is verified with your account's signing secret,
printed, and (with --forward-to) POSTed to your app with its body and webhook-* headers unchanged, so your
app verifies it as it would in production. The sender gets your app's status code back, so a failing
app makes the server retry. Runs until Ctrl-C.

Give the printed URL as a prediction's webhook (e.g. \`replicant run MODEL --webhook URL\`). The server
must be able to reach it: a local Replicant server can (with --allow-private-urls); for a remote one,
expose the port with a tunnel.

Options:
  --forward-to URL         your app's webhook endpoint
  --port N                 port to listen on (default 0: a free one)
  --host HOST              address to listen on (default 127.0.0.1)
  --secret whsec_...       verify with this secret instead of fetching your account's
  --skip-verify            forward deliveries even when their signature is wrong
${OUTPUT_HELP}   (one JSON line per delivery)

Example:
  replicant webhooks listen --forward-to http://localhost:3000/api/webhooks
`;
  const parsed = parseCommand(
    argv,
    io,
    help,
    {
      "forward-to": { type: "string" },
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      secret: { type: "string" },
      "skip-verify": { type: "boolean", default: false },
      ...OUTPUT_OPTIONS,
    },
    { max: 0 },
  );
  if (!parsed) return EXIT.ok;
  const { values } = parsed;
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw usageError(`--port must be 0-65535, got ${values.port}`);
  const forwardTo = values["forward-to"];
  if (forwardTo !== undefined) {
    try {
      new URL(forwardTo);
    } catch {
      throw usageError(`--forward-to must be a URL such as http://localhost:3000/webhooks, got ${forwardTo}`);
    }
  }
  const json = wantsJson(values, io);
  // Held open while listening: with the embedded default, its server must stay up to send webhooks.
  const connection = values.secret ? undefined : await connect(io);
  try {
    const key = values.secret ?? (await connection!.client.webhooks.default.secret.get()).key;
    return await receive(io, key, values, json);
  } finally {
    await connection?.close();
  }
}

async function receive(
  io: CliIo,
  key: string,
  values: { "forward-to"?: string | undefined; port: string; host: string; "skip-verify": boolean },
  json: boolean,
): Promise<number> {
  const port = Number(values.port);
  const forwardTo = values["forward-to"];
  const verifyWebhook = await loadSdkWebhooks();

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== "POST") {
      response.writeHead(405, { allow: "POST" }).end();
      return;
    }
    const body = await readBody(request);
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const event: Record<string, unknown> = {
      received_at: new Date().toISOString(),
      webhook_id: header("webhook-id") ?? null,
    };
    let payload: Partial<Prediction> | undefined;
    try {
      payload = await verifyWebhook<Partial<Prediction>>(
        {
          id: header("webhook-id"),
          timestamp: header("webhook-timestamp"),
          signature: header("webhook-signature"),
          body: body.toString("utf8"),
        },
        key,
      );
      event.verified = true;
    } catch (error) {
      event.verified = false;
      event.reason = (error as { reason?: string }).reason ?? (error as Error).message;
      try {
        payload = JSON.parse(body.toString("utf8")) as Partial<Prediction>;
      } catch {
        payload = undefined;
      }
    }
    event.id = payload?.id ?? null;
    event.status = payload?.status ?? null;
    let status = event.verified ? 200 : 400;
    if (forwardTo && (event.verified || values["skip-verify"])) {
      const headers: Record<string, string> = {};
      for (const name of FORWARDED_HEADERS) {
        const value = header(name);
        if (value) headers[name] = value;
      }
      headers["x-forwarded-by"] = "replicant webhooks listen";
      const started = performance.now();
      try {
        const forwarded = await fetch(forwardTo, {
          method: "POST",
          headers,
          body: new Uint8Array(body),
          signal: AbortSignal.timeout(30_000),
        });
        await forwarded.arrayBuffer().catch(() => undefined);
        status = forwarded.status;
        event.forwarded_status = forwarded.status;
      } catch (error) {
        status = 502;
        event.forwarded_error = (error as Error).message;
      }
      event.forward_ms = Math.round(performance.now() - started);
    }
    response
      .writeHead(status, { "content-type": "text/plain" })
      .end(status < 300 ? "ok\n" : `status ${status}\n`);
    if (json) io.stdout.write(`${JSON.stringify({ ...event, payload })}\n`);
    else {
      const what = `${event.id ?? "?"} ${event.status ?? "?"}`;
      const check = event.verified ? "verified" : `NOT verified (${String(event.reason)})`;
      const forward =
        event.forwarded_status !== undefined
          ? ` → ${forwardTo} ${event.forwarded_status} (${event.forward_ms} ms)`
          : event.forwarded_error
            ? ` → ${forwardTo} failed: ${String(event.forwarded_error)}`
            : "";
      io.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${what}  ${check}${forward}\n`);
    }
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      io.stderr.write(`replicant: a delivery failed: ${(error as Error).message}\n`);
      if (!response.headersSent) response.writeHead(500).end();
    });
  });
  await new Promise<void>((done, fail) => {
    server.once("error", (error) =>
      fail(new CliError(`cannot listen on ${values.host}:${port}: ${error.message}`, EXIT.usage)),
    );
    server.listen(port, values.host, done);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/`;
  const target = forwardTo ? `, verified and forwarded to ${forwardTo}` : ", verified and printed";
  io.stderr.write(`replicant: listening for webhooks on ${url}${target}. Ctrl-C to stop.\n`);
  io.stderr.write(`replicant: try \`replicant run replicate/hello-world -i text=hook --webhook ${url}\`\n`);
  if (json) io.stdout.write(`${JSON.stringify({ listening: url, forward_to: forwardTo ?? null })}\n`);
  else io.stdout.write(`Ready: ${url}\n`);

  const release = holdInterrupt(io);
  try {
    await new Promise<void>((done) => {
      if (io.interrupt.aborted) done();
      io.interrupt.addEventListener("abort", () => done(), { once: true });
      process.once("SIGTERM", () => done());
    });
  } finally {
    release();
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }
  return EXIT.ok;
}
