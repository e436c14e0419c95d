import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type { AccountRecord, ModelRecord, Store } from "./backends/types.js";
import { builtinCatalog } from "./builtin/index.js";
import { newApiToken, newId, sha256Hex } from "./ids.js";
import { generateWebhookSecret } from "./webhooks/signing.js";

const execFileAsync = promisify(execFile);

/** Reads the server's signing key from the data directory, creating it (mode 0600) on first start. */
export async function loadSigningKey(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, "signing.key");
  try {
    return Buffer.from((await readFile(path, "utf8")).trim(), "hex");
  } catch {
    const key = randomBytes(32);
    await writeFile(path, key.toString("hex"), { mode: 0o600 });
    return key;
  }
}

export async function ensureAccount(
  store: Store,
  username: string,
  type: "user" | "organization",
  now: Date,
): Promise<AccountRecord> {
  const existing = await store.getAccountByUsername(username);
  if (existing) return existing;
  const account: AccountRecord = {
    id: newId(),
    username,
    type,
    name: null,
    github_url: null,
    avatar_url: null,
    webhook_secret: generateWebhookSecret(),
    created_at: now.toISOString(),
  };
  await store.createAccount(account);
  return account;
}

/** Issues a token for an account; only its hash is stored. */
export async function issueToken(
  store: Store,
  account: AccountRecord,
  token: string,
  name: string | null,
  now: Date,
) {
  await store.addToken({
    hash: sha256Hex(token),
    account_id: account.id,
    prefix: token.slice(0, 7),
    name,
    created_at: now.toISOString(),
  });
}

/**
 * The default account's admin token: `adminToken` when given (registered if new); otherwise one is
 * generated on first start, stored with mode 0600 in the data directory, and returned so it can be
 * printed once.
 */
export async function ensureAdminToken(
  store: Store,
  account: AccountRecord,
  dataDir: string,
  adminToken: string | undefined,
  now: Date,
): Promise<{ token: string; generated: boolean }> {
  if (adminToken) {
    if ((await store.getAccountByTokenHash(sha256Hex(adminToken)))?.id !== account.id) {
      await issueToken(store, account, adminToken, "admin (REPLICANT_ADMIN_TOKEN)", now);
    }
    return { token: adminToken, generated: false };
  }
  const path = join(dataDir, "admin-token");
  try {
    const token = (await readFile(path, "utf8")).trim();
    if (token) return { token, generated: false };
  } catch {
    // first start
  }
  const token = newApiToken();
  await issueToken(store, account, token, "admin (generated)", now);
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return { token, generated: true };
}

const schemaCache = new Map<string, Promise<Record<string, unknown>>>();

/**
 * A predictor module's OpenAPI schema in Cog's shape, generated in a child process (a model package may
 * load heavy libraries at import time, and user code never runs in the API process). Cached by path and
 * modification time, in memory and in the OS temp directory.
 */
export function predictorSchema(predictorPath: string): Promise<Record<string, unknown>> {
  let cached = schemaCache.get(predictorPath);
  if (!cached) {
    cached = generateSchema(predictorPath);
    schemaCache.set(predictorPath, cached);
    cached.catch(() => schemaCache.delete(predictorPath));
  }
  return cached;
}

async function generateSchema(predictorPath: string): Promise<Record<string, unknown>> {
  const { mtimeMs } = await stat(predictorPath);
  const key = createHash("sha256").update(`${predictorPath}:${mtimeMs}`).digest("hex");
  const cacheFile = join(tmpdir(), "replicant-schema-cache", `${key}.json`);
  try {
    return JSON.parse(await readFile(cacheFile, "utf8")) as Record<string, unknown>;
  } catch {
    // not cached yet
  }
  const runtime = import.meta.resolve("@replicant/runtime");
  const script = `
    const { generateOpenApiSchema, isPredictor } = await import(${JSON.stringify(runtime)});
    const module = await import(${JSON.stringify(pathToFileURL(predictorPath).href)});
    if (!isPredictor(module.default)) { console.error("the default export is not a predictor"); process.exit(3); }
    process.stdout.write(JSON.stringify(generateOpenApiSchema(module.default)));
    process.exit(0);`;
  const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", script], {
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: Error & { stderr?: string }) => {
    throw new Error(
      `Could not load the predictor ${predictorPath}: ${error.stderr?.trim() || error.message}`,
    );
  });
  const schema = JSON.parse(stdout) as Record<string, unknown>;
  await mkdir(dirname(cacheFile), { recursive: true });
  await writeFile(cacheFile, stdout).catch(() => undefined);
  return schema;
}

/** Registers the built-in models, their fixed versions and the collection that lists them. */
export async function registerBuiltinModels(store: Store, now: Date): Promise<void> {
  const modelIds: string[] = [];
  for (const builtin of await builtinCatalog()) {
    if (builtin.listed === false) continue;
    const owner = await ensureAccount(store, builtin.owner, "organization", now);
    let model = await store.getModel(builtin.owner, builtin.name);
    if (!model) {
      const record: ModelRecord = {
        id: newId(),
        owner_account_id: owner.id,
        owner: builtin.owner,
        name: builtin.name,
        description: builtin.description,
        visibility: "public",
        hardware: "cpu",
        github_url: null,
        paper_url: null,
        license_url: null,
        cover_image_url: null,
        weights_url: null,
        readme: builtin.readme,
        run_count: 0,
        is_official: false,
        latest_version_id: null,
        latest_version_created_at: null,
        default_example_id: null,
        created_at: now.toISOString(),
      };
      await store.createModel(record);
      model = record;
    }
    if (!(await store.getVersion(builtin.versionId))) {
      await store.createVersion({
        id: builtin.versionId,
        model_id: model.id,
        openapi_schema: await predictorSchema(builtin.predictorPath),
        cog_version: "replicant",
        runner: { kind: "builtin", name: `${builtin.owner}/${builtin.name}` },
        training_schema: null,
        created_at: now.toISOString(),
      });
    }
    modelIds.push(model.id);
  }
  await store.upsertCollection(
    {
      slug: "built-in",
      name: "Built-in models",
      description: "Models that ship with Replicant and run on this server's CPU",
      full_description: "These models run offline, with weights that ship with the server.",
    },
    modelIds,
  );
}

export async function ensureDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await mkdir(join(dataDir, "blobs"), { recursive: true });
}
