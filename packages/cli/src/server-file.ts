import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * `<dataDir>/server.json` says a `replicant serve` is listening on that data directory, so the embedded
 * default connects to it instead of opening the same SQLite database from a second process.
 */
export interface ServerFile {
  url: string;
  pid: number;
  startedAt: string;
}

export function serverFilePath(dataDir: string): string {
  return join(dataDir, "server.json");
}

export async function writeServerFile(dataDir: string, url: string): Promise<void> {
  const content: ServerFile = { url, pid: process.pid, startedAt: new Date().toISOString() };
  await writeFile(serverFilePath(dataDir), `${JSON.stringify(content)}\n`, { mode: 0o644 });
}

/** Removes the file only if it is still ours (a newer server may have replaced it). */
export async function removeServerFile(dataDir: string): Promise<void> {
  const current = await readServerFile(dataDir);
  if (current && current.pid !== process.pid) return;
  await rm(serverFilePath(dataDir), { force: true });
}

export async function readServerFile(dataDir: string): Promise<ServerFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(serverFilePath(dataDir), "utf8")) as Partial<ServerFile>;
    if (typeof parsed.url !== "string" || typeof parsed.pid !== "number") return undefined;
    return { url: parsed.url, pid: parsed.pid, startedAt: String(parsed.startedAt ?? "") };
  } catch {
    return undefined;
  }
}

/** The running server on `dataDir`, if its process is alive (a file left by a crash is ignored). */
export async function findRunningServer(dataDir: string): Promise<ServerFile | undefined> {
  const file = await readServerFile(dataDir);
  if (!file) return undefined;
  try {
    process.kill(file.pid, 0);
    return file;
  } catch (error) {
    // EPERM: alive but another user's; still a server on this directory.
    return (error as NodeJS.ErrnoException).code === "EPERM" ? file : undefined;
  }
}
