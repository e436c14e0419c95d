import type { FastifyRequest } from "fastify";
import type { AccountPermission, AccountRecord } from "../backends/types.js";
import { ensureAccount, issueToken } from "../bootstrap.js";
import { badRequest, conflict, notFound, ProblemError } from "../errors.js";
import { accountOf, addRoute, params } from "../http.js";
import { newApiToken } from "../ids.js";
import type { RouteDeps } from "./deps.js";

const USERNAME = /^[a-z0-9][a-z0-9_-]{0,38}$/;
const PERMISSIONS: readonly AccountPermission[] = ["push"];

/**
 * Replicant-only endpoints (beside Replicate's, changing none of theirs): accounts and API tokens.
 * Creating accounts is for the default (admin) account; each account manages its own tokens.
 */
export function registerAdminRoutes({ app, table, ctx }: RouteDeps): void {
  const { store, config } = ctx;

  addRoute(app, table, "POST", "/v1/replicant/accounts", async (request, reply) => {
    const admin = accountOf(request);
    if (admin.username !== config.defaultUsername) {
      throw new ProblemError(403, "Forbidden", "Only the server's default account can create accounts");
    }
    const body = (request.body ?? {}) as { username?: unknown; type?: unknown };
    if (typeof body.username !== "string" || !USERNAME.test(body.username)) {
      throw badRequest("username must be 1–39 lowercase letters, digits, dashes or underscores");
    }
    const type = body.type === "organization" ? "organization" : "user";
    if (await store.getAccountByUsername(body.username))
      throw conflict(`The account ${body.username} already exists`);
    const now = ctx.now();
    const account = await ensureAccount(store, body.username, type, now);
    const token = newApiToken();
    await issueToken(store, account, token, "created with the account", now);
    return reply.code(201).send({ username: account.username, type: account.type, token });
  });

  /** The account named in the path, for the default account only (grants are the operator's decision). */
  const grantee = async (request: FastifyRequest) => {
    if (accountOf(request).username !== config.defaultUsername)
      throw new ProblemError(403, "Forbidden", "Only the server's default account can grant permissions");
    const username = params(request).username ?? "";
    const account = USERNAME.test(username) ? await store.getAccountByUsername(username) : undefined;
    if (!account) throw notFound("Account not found");
    return account;
  };
  const permissionOf = (request: FastifyRequest): AccountPermission => {
    const permission = params(request).permission ?? "";
    if (!PERMISSIONS.includes(permission as AccountPermission))
      throw notFound(
        `Unknown permission ${permission.slice(0, 40)}: the permissions are ${PERMISSIONS.join(", ")}`,
      );
    return permission as AccountPermission;
  };
  const grantsJson = async (account: AccountRecord) => ({
    username: account.username,
    permissions: await store.listPermissions(account.id),
  });

  addRoute(app, table, "GET", "/v1/replicant/accounts/:username/permissions", async (request) =>
    grantsJson(await grantee(request)),
  );

  addRoute(
    app,
    table,
    "POST",
    "/v1/replicant/accounts/:username/permissions/:permission",
    async (request) => {
      const account = await grantee(request);
      await store.grantPermission(account.id, permissionOf(request), ctx.now().toISOString());
      return grantsJson(account);
    },
  );

  addRoute(
    app,
    table,
    "DELETE",
    "/v1/replicant/accounts/:username/permissions/:permission",
    async (request) => {
      const account = await grantee(request);
      await store.revokePermission(account.id, permissionOf(request));
      return grantsJson(account);
    },
  );

  addRoute(app, table, "GET", "/v1/replicant/tokens", async (request) => {
    const tokens = await store.listTokens(accountOf(request).id);
    return {
      results: tokens.map((t) => ({
        prefix: t.prefix,
        name: t.name,
        created_at: t.created_at,
        id: t.hash.slice(0, 16),
      })),
    };
  });

  addRoute(app, table, "POST", "/v1/replicant/tokens", async (request, reply) => {
    const account = accountOf(request);
    const body = (request.body ?? {}) as { name?: unknown };
    const name = typeof body.name === "string" ? body.name.slice(0, 100) : null;
    const token = newApiToken();
    await issueToken(store, account, token, name, ctx.now());
    return reply.code(201).send({ token, prefix: token.slice(0, 7), name });
  });

  addRoute(app, table, "DELETE", "/v1/replicant/tokens/:token_id", async (request, reply) => {
    const account = accountOf(request);
    const id = params(request).token_id ?? "";
    const token = (await store.listTokens(account.id)).find((t) => t.hash.startsWith(id) && id.length === 16);
    if (!token || !(await store.deleteToken(account.id, token.hash))) throw notFound("Token not found");
    ctx.onTokenRevoked?.(token.hash);
    return reply.code(204).send();
  });
}
