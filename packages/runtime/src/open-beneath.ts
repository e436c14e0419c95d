/**
 * Opens a file a contained runner named, never leaving the directories it may write: each path component
 * is opened relative to the directory opened before it (through /proc/self/fd) without following links,
 * so a runner that swaps a file or a directory for a link after it was checked gets an error, not the
 * server's file. The caller reads the returned descriptor and closes it.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, realpathSync } from "node:fs";
import { resolve, sep } from "node:path";

const PROC_FD = "/proc/self/fd";

export function openBeneath(path: string, roots: readonly string[]): number {
  const target = resolve(path);
  const root = roots.map((r) => resolve(r)).find((r) => target.startsWith(r + sep));
  if (root === undefined) throw new Error(`${path} is outside the run's scratch directory`);
  const parts = target.slice(root.length + 1).split(sep);
  const { O_RDONLY, O_DIRECTORY = 0, O_NOFOLLOW = 0, O_NONBLOCK = 0 } = constants;
  if (!existsSync(PROC_FD) || O_NOFOLLOW === 0) {
    // Not Linux: no sandbox runs here; the link-resolved check is what there is.
    const real = realpathSync(target);
    if (!real.startsWith(realpathSync(root) + sep)) throw new Error(`${path} leads outside its directory`);
    return openSync(real, O_RDONLY);
  }
  let dir = openSync(root, O_RDONLY | O_DIRECTORY);
  try {
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      const flags = O_RDONLY | O_NOFOLLOW | (last ? O_NONBLOCK : O_DIRECTORY);
      let next: number;
      try {
        next = openSync(`${PROC_FD}/${dir}/${part}`, flags);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ELOOP" || code === "ENOTDIR") throw new Error(`${path} goes through a link`);
        throw error;
      }
      closeSync(dir);
      dir = next;
    }
    if (!fstatSync(dir).isFile()) throw new Error(`${path} is not a regular file`);
    const fd = dir;
    dir = -1;
    return fd;
  } finally {
    if (dir >= 0) closeSync(dir);
  }
}
