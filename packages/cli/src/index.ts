export { COMMANDS, globalHelp, runCli, VERSION } from "./cli.js";
export { type Connection, connect } from "./connect.js";
export { CliError, describeError, EXIT } from "./errors.js";
export type { CliIo, CliOutput } from "./io.js";
