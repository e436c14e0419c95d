import { homedir } from "node:os";
import { join } from "node:path";

/** The CLI's home: the embedded server's data, credentials.json and server.json live here. */
export function replicantHome(env: Record<string, string | undefined> = process.env): string {
  return env.REPLICANT_HOME || join(homedir(), ".replicant");
}

export const DEFAULT_BASE_URL = "https://api.replicate.com/v1";

/** `http://host:5000` and `http://host:5000/v1/` both become `http://host:5000/v1`. */
export function normalizeBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`"${url}" is not a URL: give one such as http://127.0.0.1:5000/v1`);
  }
  const path = parsed.pathname.replace(/\/+$/, "");
  return `${parsed.origin}${path === "" ? "/v1" : path}`;
}
