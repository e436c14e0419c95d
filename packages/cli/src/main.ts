// Entry point of `replicant` (bin/replicant.js). Kept tiny: see cli.ts.
import { runCli } from "./cli.js";
import { exitAfterFlush, processIo } from "./io.js";

// Exits explicitly: an embedded server or keep-alive sockets must not hold the process open.
runCli(process.argv.slice(2), processIo()).then(exitAfterFlush);
