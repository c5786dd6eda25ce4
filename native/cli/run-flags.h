/*
 * The command line of `tsswarm [GLOBAL OPTIONS] run|container run [OPTIONS] IMAGE [COMMAND...]`, read
 * exactly as the Node CLI (src/cli/main.ts, src/cli/container-commands.ts) reads it, into the
 * ContainerRunRequest it would send.
 *
 * Anything this reader is not sure to read the same way (other commands, --help, grouped short
 * options, a value the Node CLI would refuse, ...) is "not ours": the caller hands the command line
 * to the Node CLI unchanged, which then prints its own error or does the work. So every message and
 * exit code of a refused command line comes from one place. test/daemon/run-front.test.ts checks
 * the two readers against each other.
 */
#ifndef TSSWARM_RUN_FLAGS_H
#define TSSWARM_RUN_FLAGS_H

#include <stdbool.h>
#include "node.pb-c.h"

typedef Tsswarm__Node__V1__ContainerRunRequest RunRequest;

struct run_command {
	char socket_path[108]; /* sun_path */
	RunRequest request;
};

/* Fills `out` (its strings point into argv or into memory that lives as long as the process).
 * Returns true when the command line is a `run` this reader understands completely. */
bool read_run_command(int argc, char **argv, struct run_command *out);

#endif
