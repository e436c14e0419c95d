import { parseCommand } from "../args.js";
import { withConnection } from "../connect.js";
import { EXIT, usageError } from "../errors.js";
import type { CliIo } from "../io.js";

const PERMISSIONS = ["push"];

const help = (verb: "grant" | "revoke") => `Usage: replicant ${verb} USERNAME PERMISSION

${verb === "grant" ? "Gives an account a permission" : "Takes a permission back from an account"} on this server; only the server's default account may.
Permissions:
  push    create model versions with \`replicant push\` (code, Cog servers, GGUF weights). Without it a
          push is refused, unless the server runs with --allow-push-from-all.

Example:
  replicant ${verb} alice push
`;

async function change(verb: "grant" | "revoke", argv: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(argv, io, help(verb), {}, { min: 2, max: 2 });
  if (!parsed) return EXIT.ok;
  const [username = "", permission = ""] = parsed.positionals;
  if (!PERMISSIONS.includes(permission))
    throw usageError(`unknown permission ${permission}: the permissions are ${PERMISSIONS.join(", ")}`);
  return withConnection(io, async ({ client }) => {
    const path = `/replicant/accounts/${encodeURIComponent(username)}/permissions/${permission}`;
    const result =
      verb === "grant"
        ? await client.post<{ username: string; permissions: string[] }>(path)
        : await client.delete<{ username: string; permissions: string[] }>(path);
    const list = result.permissions.length > 0 ? result.permissions.join(", ") : "none";
    io.stdout.write(`${result.username}: ${list}\n`);
    return EXIT.ok;
  });
}

export const grant = (argv: string[], io: CliIo) => change("grant", argv, io);
export const revoke = (argv: string[], io: CliIo) => change("revoke", argv, io);
