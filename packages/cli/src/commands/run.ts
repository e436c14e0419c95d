import type { CliIo } from "../io.js";
import { predict } from "../predict.js";

export function main(argv: string[], io: CliIo): Promise<number> {
  return predict("run", argv, io);
}
