import { createHash } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { isValidBlobKey } from "./fs-blob-store.js";
import type { BlobInfo, BlobStore } from "./types.js";

export interface S3BlobStoreOptions {
  bucket: string;
  /** Custom endpoint for S3-compatible stores (MinIO, Garage, Ceph, s3rver); omit for AWS. */
  endpoint?: string | undefined;
  region?: string | undefined;
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** Path-style URLs (`endpoint/bucket/key`). Default: true when an endpoint is given. */
  forcePathStyle?: boolean | undefined;
  /** Prepended to every key, so several deployments can share a bucket. */
  keyPrefix?: string | undefined;
  /** Multipart part size for large uploads. Default 8 MiB (S3's minimum is 5 MiB). */
  partSize?: number | undefined;
}

function assertKey(key: string): void {
  if (!isValidBlobKey(key))
    throw Object.assign(new Error(`invalid blob key: ${JSON.stringify(key)}`), { code: "INVALID_KEY" });
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown } } | null;
  return (
    e?.name === "NoSuchKey" ||
    e?.name === "NotFound" ||
    e?.name === "NoSuchBucket" ||
    e?.$metadata?.httpStatusCode === 404
  );
}

/**
 * Blobs in an S3 bucket. Uploads stream (a single PUT for small blobs, multipart above the part
 * size) while size and SHA-256 are computed on the way; an object appears whole or not at all, which
 * is S3's own guarantee for PUT and CompleteMultipartUpload. A failed upload is aborted.
 */
export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly partSize: number;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.keyPrefix = options.keyPrefix ?? "";
    this.partSize = Math.max(5 * 1024 * 1024, options.partSize ?? 8 * 1024 * 1024);
    this.client = new S3Client({
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      region: options.region ?? "us-east-1",
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      // s3rver and several S3-compatible stores do not understand the newer default checksums.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  private objectKey(key: string): string {
    assertKey(key);
    return this.keyPrefix + key;
  }

  /** Creates the bucket if it does not exist (for development and tests; production buckets are provisioned). */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  async put(key: string, data: Uint8Array | Readable | AsyncIterable<Uint8Array>): Promise<BlobInfo> {
    const objectKey = this.objectKey(key);
    const hash = createHash("sha256");
    let size = 0;
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    let sourceError: unknown;
    const source: AsyncIterable<Uint8Array> =
      data instanceof Uint8Array ? Readable.from([data]) : (data as AsyncIterable<Uint8Array>);
    const feeding = (async () => {
      try {
        for await (const chunk of source) {
          const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
          hash.update(bytes);
          size += bytes.length;
          if (!body.write(bytes)) await new Promise<void>((resolve) => body.once("drain", resolve));
        }
        body.end();
      } catch (error) {
        sourceError = error;
        body.destroy(error instanceof Error ? error : new Error(String(error)));
      }
    })();
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: objectKey, Body: body },
      partSize: this.partSize,
      queueSize: 2,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (error) {
      await feeding;
      throw sourceError ?? error;
    }
    await feeding;
    if (sourceError !== undefined) throw sourceError;
    return { size, sha256: hash.digest("hex") };
  }

  async get(key: string): Promise<Readable | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      const body = result.Body;
      if (body === undefined) return undefined;
      // On Node the SDK returns an http.IncomingMessage, a Readable.
      return body instanceof Readable ? body : Readable.from(body as unknown as AsyncIterable<Uint8Array>);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return { size: Number(head.ContentLength ?? 0) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** A presigned GET URL for the blob, valid for `expiresInSeconds` (for handing downloads to S3 directly). */
  async presignedGetUrl(key: string, expiresInSeconds: number): Promise<string> {
    const objectKey = this.objectKey(key);
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }), {
      expiresIn: Math.max(1, Math.floor(expiresInSeconds)),
    });
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
