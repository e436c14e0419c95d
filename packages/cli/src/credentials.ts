import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Tokens per API base URL, in `<home>/credentials.json` (mode 0600). `default` is the host of the last login. */
export interface Credentials {
  default?: string | undefined;
  hosts: Record<string, { token: string; username?: string | undefined }>;
}

export function credentialsPath(home: string): string {
  return join(home, "credentials.json");
}

export async function readCredentials(home: string): Promise<Credentials> {
  try {
    const parsed = JSON.parse(await readFile(credentialsPath(home), "utf8")) as Partial<Credentials>;
    return { default: parsed.default, hosts: parsed.hosts ?? {} };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { hosts: {} };
    throw new Error(`cannot read ${credentialsPath(home)} (${(error as Error).message}): fix or delete it`);
  }
}

/** Writes atomically, creating the file with mode 0600 so the token is never readable by others. */
export async function writeCredentials(home: string, credentials: Credentials): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const path = credentialsPath(home);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}
