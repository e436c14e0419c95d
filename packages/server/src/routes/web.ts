import { existsSync } from "node:fs";
import { join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyReply } from "fastify";
import type { RouteDeps } from "./deps.js";

/**
 * The web playground (`@replicant/web`) at `/`: its built files, with the SPA's index.html for every other
 * GET outside `/v1` (its sign-in links are in sign-in.ts). Security headers and a CSP are set on these
 * responses only; the API under `/v1` is left exactly as it was.
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

export function setUiHeaders(reply: FastifyReply): void {
  reply.headers(UI_HEADERS);
}

export function registerWebRoutes({ app }: RouteDeps): void {
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
