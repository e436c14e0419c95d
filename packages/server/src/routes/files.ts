import type { FastifyRequest } from "fastify";
import type { FileRecord } from "../backends/types.js";
import { badRequest, notFound, ProblemError, validationFailed } from "../errors.js";
import { accountOf, addRoute, cursorOf, params, query, sendNoContent, toPage } from "../http.js";
import { newId } from "../ids.js";
import { downloadHeaders, isValidMediaType, MAX_MEDIA_TYPE_LENGTH } from "../media-types.js";
import { fileJson } from "../serialize.js";
import type { RouteDeps } from "./deps.js";

const MAX_METADATA_BYTES = 64 * 1024;

export const fileTooLarge = () =>
  new ProblemError(413, "Request Entity Too Large", "Files must be less than 100MB in size");

function parseMetadata(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw validationFailed([
      { type: "invalid_json", field: "metadata", description: "metadata must be valid JSON" },
    ]);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw validationFailed([
      { type: "invalid_type", field: "metadata", description: "metadata must be a JSON object" },
    ]);
  }
  return value as Record<string, unknown>;
}

/** `type`, or the `content` part's own Content-Type when no `type` was sent: both are refused alike. */
const invalidType = (field: "type" | "content", value: string) => {
  const what = field === "type" ? "type" : "the content part's Content-Type";
  return validationFailed([
    {
      type: "invalid_media_type",
      field,
      description:
        value.length > MAX_MEDIA_TYPE_LENGTH
          ? `${what} must be at most ${MAX_MEDIA_TYPE_LENGTH} characters`
          : `${what} must be a media type such as image/png or text/plain; charset=utf-8`,
    },
  ]);
};

export function registerFileRoutes({ app, table, ctx }: RouteDeps): void {
  const { store, blobs, urls } = ctx;
  const nowSeconds = () => Math.floor(ctx.now().getTime() / 1000);

  async function ownFile(request: FastifyRequest): Promise<FileRecord> {
    const file = await store.getFile(params(request).file_id ?? "");
    if (!file || file.account_id !== accountOf(request).id) throw notFound("File not found");
    return file;
  }

  addRoute(app, table, "POST", "/v1/files", async (request, reply) => {
    const account = accountOf(request);
    if (!request.isMultipart()) throw badRequest("Upload files as multipart/form-data with a `content` part");
    const id = newId();
    const blobKey = `files/${id}`;
    let content: { size: number; sha256: string; filename: string | undefined; mimetype: string } | undefined;
    let filename: string | undefined;
    let type: string | undefined;
    let metadata: Record<string, unknown> = {};
    try {
      for await (const part of request.parts()) {
        if (part.type === "file") {
          if (part.fieldname === "content") {
            if (content) throw badRequest("Send one `content` part");
            const info = await blobs.put(blobKey, part.file);
            if (part.file.truncated) throw fileTooLarge();
            content = { ...info, filename: part.filename, mimetype: part.mimetype };
          } else if (part.fieldname === "metadata") {
            const buffer = await part.toBuffer();
            if (buffer.length > MAX_METADATA_BYTES) throw badRequest("metadata is too large");
            metadata = parseMetadata(buffer.toString("utf8"));
          } else {
            part.file.resume();
            throw badRequest(`Unexpected file part ${JSON.stringify(part.fieldname)}`);
          }
        } else {
          const value = typeof part.value === "string" ? part.value : String(part.value);
          if (part.fieldname === "filename") filename = value;
          else if (part.fieldname === "type") {
            // Refused here, before a content part that may follow is stored.
            if (!isValidMediaType(value)) throw invalidType("type", value);
            type = value;
          } else if (part.fieldname === "metadata") metadata = parseMetadata(value);
        }
      }
    } catch (error) {
      await blobs.delete(blobKey).catch(() => undefined);
      if ((error as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE") throw fileTooLarge();
      throw error;
    }
    if (!content) {
      throw validationFailed([{ type: "required", field: "content", description: "content is required" }]);
    }
    const name = filename ?? content.filename ?? "file";
    if (Buffer.byteLength(name) > 255) {
      await blobs.delete(blobKey);
      throw validationFailed([
        { type: "string_lte", field: "filename", description: "filename must be at most 255 bytes" },
      ]);
    }
    // The declared type, else the part's own; either ends up in a response header, so it must be one.
    const declared = type ?? (content.mimetype || "application/octet-stream");
    if (!isValidMediaType(declared)) {
      await blobs.delete(blobKey);
      throw invalidType(type === undefined ? "content" : "type", declared);
    }
    const now = ctx.now();
    const record: FileRecord = {
      id,
      account_id: account.id,
      name,
      content_type: declared,
      size: content.size,
      sha256: content.sha256,
      metadata,
      blob_key: blobKey,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + ctx.config.fileExpiryMs).toISOString(),
    };
    await store.createFile(record);
    return reply.code(201).send(fileJson(record, account.username, urls, nowSeconds()));
  });

  addRoute(app, table, "GET", "/v1/files", async (request) => {
    const account = accountOf(request);
    const page = await store.listFiles(account.id, { cursor: cursorOf(request), limit: 100 });
    return toPage(request, urls.api(""), page, (f) => fileJson(f, account.username, urls, nowSeconds()));
  });

  addRoute(app, table, "GET", "/v1/files/:file_id", async (request) =>
    fileJson(await ownFile(request), accountOf(request).username, urls, nowSeconds()),
  );

  addRoute(app, table, "DELETE", "/v1/files/:file_id", async (request, reply) => {
    const file = await ownFile(request);
    await store.deleteFile(file.id);
    await blobs.delete(file.blob_key);
    return sendNoContent(reply);
  });

  // Signed and expiring, so clients fetch it without the API token; the owner's token works too.
  addRoute(
    app,
    table,
    "GET",
    "/v1/files/:file_id/download",
    async (request, reply) => {
      const id = params(request).file_id ?? "";
      const file = await store.getFile(id);
      if (!file) throw notFound("File not found");
      const q = query(request);
      const owner = await store.getAccountById(file.account_id);
      const signed =
        q.owner !== undefined &&
        q.expiry !== undefined &&
        q.signature !== undefined &&
        q.owner === owner?.username &&
        urls.verifyFileDownload(q.owner, id, q.expiry, q.signature, nowSeconds());
      if (!signed && request.account?.id !== file.account_id) throw notFound("File not found");
      const stream = await blobs.get(file.blob_key);
      if (!stream) throw notFound("File not found");
      // Uploads and file outputs alike: documents and scripts are attachments, all of it sandboxed.
      return reply
        .headers(downloadHeaders(file.content_type, file.name))
        .header("content-length", String(file.size))
        .header("cache-control", "private, max-age=3600")
        .send(stream);
    },
    { public: true },
  );
}
