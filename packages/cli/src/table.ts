import type { CliIo } from "./io.js";

/** Prints rows as aligned columns (the last column is not padded). */
export function printTable(io: CliIo, headers: string[], rows: string[][]): void {
  if (rows.length === 0) {
    io.stdout.write("(none)\n");
    return;
  }
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  io.stdout.write(`${[line(headers), ...rows.map(line)].join("\n")}\n`);
}

/** Items of a list, following pages up to `limit` (undefined: the first page only). */
export async function collect<T>(
  list: PromiseLike<{ results: T[] }> & { toArray(limit?: number): Promise<T[]> },
  limit: number | undefined,
): Promise<T[]> {
  if (limit === undefined) return (await list).results;
  return list.toArray(limit);
}

export function shortDate(iso: string | null | undefined): string {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "";
}

export function oneLine(text: string | null | undefined, max = 60): string {
  const flat = (text ?? "").replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
