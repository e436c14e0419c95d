import type { FastifyRequest } from "fastify";
import type { ServerConfig } from "../config.js";
import { badRequest, ProblemError } from "../errors.js";
import { accountOf, addRoute, bearerToken } from "../http.js";
import { sha256Hex } from "../ids.js";
import type { LoginLinks } from "../login-links.js";
import type { UrlSigner } from "../urls.js";
import type { RouteDeps } from "./deps.js";
import { findWebDir, setUiHeaders } from "./web.js";

/**
 * The playground's one-time sign-in links (`/?login=CODE`): `replicant serve` prints one for the default
 * account, `POST /v1/replicant/login-links` issues one for the caller's own token (what `replicant open`
 * calls), and the page that opens a link trades its code for the token at `POST /replicant/session`.
 *
 * Nothing is handed out without a code: no local process gets a token for asking, and a code grants no
 * more than the token its issuer already held. Codes are kept in one process's memory.
 */

export const USED_OR_EXPIRED =
  "This sign-in link was used or has expired; run `replicant open` for a new one.";

/** Why this server issues no sign-in links, or undefined when it does. */
export function loginLinkRefusal(config: ServerConfig): string | undefined {
  if (config.scaleOut !== undefined) {
    return "Sign-in links are kept in one process's memory, so a scale-out deployment issues none: sign in to the playground with an API token";
  }
  if (!findWebDir()) return "This server does not serve the web playground (its build is missing)";
  return undefined;
}

/** The playground URL that signs in with `code`. */
export function loginUrl(urls: UrlSigner, code: string): string {
  return `${urls.web("/")}?login=${code}`;
}

/**
 * A code is a bearer secret, yet the exchange also refuses what no playground page sends: another
 * site's Origin or Sec-Fetch-Site (when CORS is opened, it covers this route too), so a leaked link
 * cannot be spent by a page elsewhere.
 */
function crossSite(request: FastifyRequest, urls: UrlSigner): boolean {
  const { origin } = request.headers;
  if (origin !== undefined) {
    let host: string | undefined;
    let full: string | undefined;
    try {
      const parsed = new URL(origin);
      host = parsed.host;
      full = parsed.origin;
    } catch {
      return true;
    }
    if (host !== request.headers.host && full !== new URL(urls.base).origin) return true;
  }
  const site = request.headers["sec-fetch-site"];
  return site !== undefined && site !== "same-origin" && site !== "none";
}

export function registerSignInRoutes({ app, table, ctx }: RouteDeps, loginLinks: LoginLinks): void {
  const { config, store, urls } = ctx;

  addRoute(app, table, "POST", "/v1/replicant/login-links", async (request, reply) => {
    accountOf(request);
    const refusal = loginLinkRefusal(config);
    if (refusal !== undefined) throw new ProblemError(409, "Conflict", refusal);
    // The caller's own token, from the header it authenticated with: the link signs in as it would.
    const token = bearerToken(request.headers.authorization ?? "");
    if (token === undefined) throw new ProblemError(401, "Unauthenticated", "Sign in with a bearer token");
    const { code, expiresAt } = loginLinks.issue(token);
    return reply
      .code(201)
      .header("cache-control", "no-store")
      .send({ url: loginUrl(urls, code), code, expires_at: expiresAt.toISOString() });
  });

  // A code in a GET could be spent by a prefetch: the exchange is a POST, GET answers 405.
  app.get("/replicant/session", async (_request, reply) => reply.callNotFound());
  addRoute(app, table, "POST", "/replicant/session", async (request, reply) => {
    setUiHeaders(reply);
    reply.header("cache-control", "no-store");
    if (crossSite(request, urls)) {
      throw new ProblemError(403, "Forbidden", "Sign-in links are opened by this server's own page");
    }
    const code = (request.body as { code?: unknown } | undefined)?.code;
    if (typeof code !== "string") throw badRequest('Send the sign-in link\'s code as {"code": "…"}');
    const token = loginLinks.redeem(code);
    // A token revoked since the link was issued signs nobody in.
    const account = token === undefined ? undefined : await store.getAccountByTokenHash(sha256Hex(token));
    if (token === undefined || account === undefined)
      throw new ProblemError(403, "Forbidden", USED_OR_EXPIRED);
    return reply.send({ token, username: account.username });
  });
}
