/**
 * `tsswarm`: one command line for the client commands (src/cli/) and `tsswarm daemon` (src/daemon/),
 * so that the CLI itself imports nothing of the daemon.
 */
import { daemonCommand } from './daemon/command.js';
import { runCli } from './cli/program.js';

// Not a top-level await: the CLI is bundled as CommonJS (scripts/build-cli.mjs).
// Don't wait for gRPC's idle timers to let the loop drain: stdout and stderr writes are synchronous
// on Linux, so nothing is lost. The daemon never gets here (its action never returns).
void runCli(process.argv.slice(2), undefined, () => [daemonCommand()]).then(() => process.exit());
