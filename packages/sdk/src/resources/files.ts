import type { FileObject } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import { LocalPath } from "../core/file-inputs.js";
import type { PagePromise } from "../core/pagination.js";
import { randomId } from "../internal/random-id.js";
import { APIResource, path } from "./resource.js";

/** What `files.create` uploads. A `LocalPath` (see `fromPath`) is read from disk (Node, Bun, Deno). */
export type UploadableFile = Blob | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array> | LocalPath;

export interface FileCreateOptions extends RequestControl {
  /** The file name; defaults to the File's name, else `blob_<time>`. */
  filename?: string | undefined;
  /** The media type; defaults to the Blob's type, else `application/octet-stream`. */
  contentType?: string | undefined;
  idempotencyKey?: string | undefined;
}

export interface FileDownloadParams {
  owner: string;
  expiry: number | string;
  signature: string;
}

/** `files.*`: create (upload), get, list, delete, download. */
export class Files extends APIResource {
  /** Uploads a file (multipart, up to 100 MB) with optional metadata, as in the `replicate` package. */
  create = async (
    file: UploadableFile,
    metadata: Record<string, unknown> = {},
    options: FileCreateOptions = {},
  ): Promise<FileObject> => {
    const { filename, contentType, idempotencyKey, ...control } = options;
    const blob = await toBlob(file);
    const name = filename ?? (blob instanceof File && blob.name ? blob.name : `blob_${Date.now()}`);
    const type = contentType ?? (blob.type || "application/octet-stream");
    const form = new FormData();
    form.append("content", new Blob([blob], { type }), name);
    form.append("metadata", new Blob([JSON.stringify(metadata)], { type: "application/json" }));
    return this.client.post<FileObject>("/files", {
      ...control,
      data: form,
      idempotencyKey: idempotencyKey ?? randomId(),
    });
  };

  get = (fileId: string, options: RequestControl = {}): Promise<FileObject> =>
    this.client.get<FileObject>(path`/files/${fileId}`, options);

  list = (options: RequestControl = {}): PagePromise<FileObject> =>
    this.client.getPage<FileObject>("/files", options);

  /** Deletes a file. Resolves true. */
  delete = async (fileId: string, options: RequestControl = {}): Promise<boolean> => {
    await this.client.delete(path`/files/${fileId}`, options);
    return true;
  };

  /**
   * Downloads a file's bytes as the raw `Response` (stream `response.body`, or `await response.blob()`).
   * Pass the file object to use its signed `urls.download`, or an id with the signed-URL parameters
   * (`owner`, `expiry`, `signature`).
   */
  download = (
    file: string | FileObject,
    params: Partial<FileDownloadParams> = {},
    options: RequestControl = {},
  ): Promise<Response> => {
    const headers = { ...options.headers, Accept: "*/*" };
    if (typeof file !== "string" && file.urls.download) {
      return this.client.request(file.urls.download, { ...options, method: "GET", headers });
    }
    const fileId = typeof file === "string" ? file : file.id;
    return this.client.request(path`/files/${fileId}/download`, {
      ...options,
      method: "GET",
      params: { owner: params.owner, expiry: params.expiry, signature: params.signature },
      headers,
    });
  };
}

async function toBlob(file: UploadableFile): Promise<Blob> {
  if (file instanceof Blob) return file;
  if (file instanceof ArrayBuffer) return new Blob([file]);
  if (ArrayBuffer.isView(file)) {
    return new Blob([new Uint8Array(file.buffer, file.byteOffset, file.byteLength).slice()]);
  }
  if (file instanceof ReadableStream) return new Response(file).blob();
  if (file instanceof LocalPath) {
    const { readPathAsFile } = await import("../node/paths.js");
    return readPathAsFile(file.path);
  }
  throw new TypeError(
    "Invalid file argument, must be a Blob, File, Buffer, Uint8Array, ReadableStream or fromPath()",
  );
}
