/** `tsswarm`: the command line (the commands are in program.ts). */
import { runCli } from './program.js';

// Not a top-level await: the CLI is bundled as CommonJS (scripts/build-cli.mjs).
// Don't wait for gRPC's idle timers to let the loop drain: stdout and stderr writes are synchronous
// on Linux, so nothing is lost. The daemon never gets here (its action never returns).
void runCli(process.argv.slice(2)).then(() => process.exit());
