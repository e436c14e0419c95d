import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { isIP } from "node:net";
import { join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyReply, FastifyRequest } from "fastify";
import ipaddr from "ipaddr.js";
import { sha256Hex } from "../ids.js";
import type { RouteDeps } from "./deps.js";

/**
 * The web playground (`@replicant/web`) at `/`: its built files, with the SPA's index.html for every other
 * GET outside `/v1`, and `GET /replicant/session` for the local sign-in. Security headers and a CSP are
 * set on these responses only; the API under `/v1` is left exactly as it was.
 *
 * Where the build is looked for: $REPLICANT_WEB_DIR when set, else `packages/web/dist-web` beside this
 * package in the monorepo. Without a build the server starts as the API only and logs a line saying so.
 */

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Prediction outputs: this server's file URLs, data: URIs, or a model's own https URLs.
  "img-src 'self' data: blob: https:",
  "media-src 'self' data: blob: https:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const UI_HEADERS: Record<string, string> = {
  "content-security-policy": CSP,
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
  "x-content-type-options": "nosniff",
};

export function findWebDir(): string | undefined {
  const configured = process.env.REPLICANT_WEB_DIR;
  // dist/src/routes/web.js → packages/web/dist-web
  const dir = configured || fileURLToPath(new URL("../../../../web/dist-web/", import.meta.url));
  return existsSync(join(dir, "index.html")) ? dir : undefined;
}

function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (!isIP(bare)) return false;
  let parsed = ipaddr.parse(bare);
  if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed.range() === "loopback";
}

/** A Host or Origin host naming this machine's loopback: localhost, *.localhost, 127.0.0.0/8, [::1]. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  return isLoopbackAddress(host);
}

function hostOf(hostHeader: string): string | undefined {
  try {
    return new URL(`http://${hostHeader}`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Why the default account's token may NOT be handed to this request, or undefined when it may.
 *
 * The embedded default on loopback signs its local user in by itself: the browser asks
 * `GET /replicant/session` and gets the default account's token. That is only safe when the request can
 * only come from a program of this machine's user acting through a page of this server, so every one of
 * these must hold:
 * 1. The server listens on a loopback address only (not 0.0.0.0, not a LAN address): nobody else can connect.
 * 2. The TCP peer is a loopback address, and the request carries no proxy headers (Forwarded,
 *    X-Forwarded-For, X-Real-IP): a reverse proxy on the same host that forwards the internet to a loopback
 *    listener would otherwise make every remote visitor look local.
 * 3. The Host header names loopback (localhost, 127.x, [::1]): defeats DNS rebinding, where evil.example
 *    resolves to 127.0.0.1 and its page becomes "same-origin" with this server.
 * 4. No Origin from another site: an Origin header, when present, must be this server's own loopback origin,
 *    and Sec-Fetch-Site, when present, must be same-origin or none. Together with 3 this stops other web
 *    sites' pages from reading the token even if CORS is opened for the API (cors applies to every route).
 * 5. The server's public URL, when configured, is itself loopback (a server published elsewhere is not
 *    "the local default"), and the response is never cached (Cache-Control: no-store).
 * A request that fails any check gets `{ token: null, reason }` and must sign in with a token.
 */
export function sessionRefusal(
  request: FastifyRequest,
  listening: AddressInfo | string | null,
  publicUrl?: string,
): string | undefined {
  if (listening === null || typeof listening === "string" || !isLoopbackAddress(listening.address)) {
    return "the server does not listen on a loopback address only";
  }
  if (publicUrl !== undefined) {
    let publicHost: string | undefined;
    try {
      publicHost = new URL(publicUrl).hostname;
    } catch {
      publicHost = undefined;
    }
    if (!publicHost || !isLoopbackHost(publicHost)) return "the server is published under a non-loopback URL";
  }
  if (!isLoopbackAddress(request.socket.remoteAddress)) return "the request does not come from this machine";
  const headers = request.headers;
  if (
    headers.forwarded !== undefined ||
    headers["x-forwarded-for"] !== undefined ||
    headers["x-real-ip"] !== undefined
  ) {
    return "the request came through a proxy";
  }
  const host = typeof headers.host === "string" ? hostOf(headers.host) : undefined;
  if (!host || !isLoopbackHost(host)) return "the Host header does not name this machine";
  const origin = headers.origin;
  if (origin !== undefined) {
    let same = false;
    try {
      const parsed = new URL(origin);
      same = parsed.protocol === "http:" && parsed.host === headers.host && isLoopbackHost(parsed.hostname);
    } catch {
      same = false;
    }
    if (!same) return "the request comes from another site";
  }
  const site = headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none")
    return "the request comes from another site";
  return undefined;
}

function setUiHeaders(reply: FastifyReply): void {
  reply.headers(UI_HEADERS);
}

export function registerWebRoutes({ app, ctx }: RouteDeps): void {
  const { config } = ctx;

  app.get("/replicant/session", async (request, reply) => {
    setUiHeaders(reply);
    reply.header("cache-control", "no-store");
    const refusal = sessionRefusal(request, app.server.address(), config.publicUrl);
    if (refusal !== undefined) {
      // 200 with no token rather than 403: the sign-in page asks on each visit and a refusal is expected.
      return reply.send({
        token: null,
        reason: `No automatic sign-in: ${refusal}. Sign in with an API token.`,
      });
    }
    const token =
      config.adminToken ??
      (await readFile(join(config.dataDir, "admin-token"), "utf8").catch(() => "")).trim();
    const account = token ? await ctx.store.getAccountByTokenHash(sha256Hex(token)) : undefined;
    if (!account || account.username !== config.defaultUsername) {
      return reply.send({ token: null, reason: "The default account's token is not known to this server." });
    }
    return reply.send({ token, username: account.username });
  });

  const root = findWebDir();
  if (!root) {
    app.log.warn(
      "web playground not built (packages/web/dist-web missing; run `npm run build -w @replicant/web`): serving the API only",
    );
    return;
  }
  const rootDir = normalize(root + sep);
  void app.register(fastifyStatic, { root: rootDir, serve: false, decorateReply: true });

  const sendIndex = (reply: FastifyReply) => {
    setUiHeaders(reply);
    reply.header("cache-control", "no-cache");
    return reply.type("text/html; charset=utf-8").sendFile("index.html", rootDir, { cacheControl: false });
  };

  app.get("/", async (_request, reply) => sendIndex(reply));
  app.get("/*", async (request, reply) => {
    const path = decodeURIComponent(
      (request.url.split("?")[0] ?? "/").replace(/%(?![0-9a-fA-F]{2})/g, "%25"),
    );
    if (path === "/v1" || path.startsWith("/v1/")) return reply.callNotFound();
    // Built assets have content hashes in their names: cache them for a year.
    if (path.startsWith("/assets/") && !path.includes("..") && existsSync(join(rootDir, path))) {
      setUiHeaders(reply);
      return reply.sendFile(path.slice(1), rootDir, { maxAge: "365d", immutable: true });
    }
    const file = path.slice(1);
    if (/^[\w.-]+\.(?:svg|png|ico|txt|webmanifest)$/.test(file) && existsSync(join(rootDir, file))) {
      setUiHeaders(reply);
      return reply.sendFile(file, rootDir, { maxAge: "1h" });
    }
    return sendIndex(reply);
  });
}
