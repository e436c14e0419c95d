import { createHmac, timingSafeEqual } from "node:crypto";

const STREAM_QUERY_CACHE = 10_000;

/**
 * Builds the URLs handed to clients. File downloads and prediction streams are capabilities: signed
 * with the server's key and expiring, so that clients fetch them without the API token, as the
 * official clients do with Replicate's.
 */
export class UrlSigner {
  private readonly streamQueries = new Map<string, string>();

  constructor(
    private publicUrl: string,
    private readonly key: Buffer,
  ) {}

  setPublicUrl(url: string): void {
    this.publicUrl = url.replace(/\/+$/, "");
  }

  get base(): string {
    return this.publicUrl;
  }

  api(path: string): string {
    return `${this.publicUrl}/v1${path}`;
  }

  web(path: string): string {
    return `${this.publicUrl}${path}`;
  }

  /** `signature` as the OpenAPI document describes it: base64 HMAC-SHA256 of "{owner} {id} {expiry}". */
  fileDownload(owner: string, fileId: string, expiresAtSeconds: number): string {
    const signature = this.sign(`${owner} ${fileId} ${expiresAtSeconds}`);
    const query = new URLSearchParams({ owner, expiry: String(expiresAtSeconds), signature });
    return this.api(`/files/${fileId}/download?${query}`);
  }

  verifyFileDownload(
    owner: string,
    fileId: string,
    expiry: string,
    signature: string,
    nowSeconds: number,
  ): boolean {
    if (!/^\d{1,12}$/.test(expiry) || Number(expiry) < nowSeconds) return false;
    return this.verify(`${owner} ${fileId} ${expiry}`, signature);
  }

  predictionStream(id: string, expiresAtSeconds: number): string {
    // Every prediction JSON carries this URL, and its expiry is fixed by the prediction's creation
    // time: remember the signed query rather than computing an HMAC on every read.
    const key = `${id} ${expiresAtSeconds}`;
    let query = this.streamQueries.get(key);
    if (query === undefined) {
      const signature = this.sign(`stream ${id} ${expiresAtSeconds}`);
      query = `expiry=${expiresAtSeconds}&signature=${encodeURIComponent(signature)}`;
      if (this.streamQueries.size >= STREAM_QUERY_CACHE) this.streamQueries.clear();
      this.streamQueries.set(key, query);
    }
    return `${this.publicUrl}/v1/predictions/${id}/stream?${query}`;
  }

  verifyPredictionStream(id: string, expiry: string, signature: string, nowSeconds: number): boolean {
    if (!/^\d{1,12}$/.test(expiry) || Number(expiry) < nowSeconds) return false;
    return this.verify(`stream ${id} ${expiry}`, signature);
  }

  private sign(content: string): string {
    return createHmac("sha256", this.key).update(content).digest("base64");
  }

  /** Constant-time; a signature of the wrong length or encoding is simply invalid. */
  private verify(content: string, signature: string): boolean {
    const expected = createHmac("sha256", this.key).update(content).digest();
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
