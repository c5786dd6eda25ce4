/*
 * tsswarm-run: `tsswarm run` and `tsswarm container run` without starting Node.
 *
 * bin/tsswarm sends command lines that name `run` here. This program reads the command line as the
 * Node CLI would (run-flags.c), sends the same ContainerRunRequest over the daemon's unix socket
 * and prints what the Node CLI prints: the container's output as it comes, its id with -d, and it
 * exits with the container's exit code (125 when the daemon refused). Starting Node costs more than
 * the container itself; this way `run --rm IMAGE true` costs about what the daemon's work costs.
 *
 * Any other command line goes to the Node CLI unchanged (exec, same argv), so that there is one
 * implementation of every other command and of every usage error.
 *
 * TSSWARM_RUN_FRONT_PRINT=1: print what would be done instead of doing it ("node", or "native", the
 * socket and the request's protobuf bytes in hex), for the test that holds both readers to the same
 * result.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpc-stream.h"
#include "run-flags.h"

#define EXIT_REFUSED 125 /* docker run's code when the daemon refused, so scripts can tell it apart */

static bool print_only(void)
{
	const char *v = getenv("TSSWARM_RUN_FRONT_PRINT");
	return v && strcmp(v, "1") == 0;
}

/* exec node on bin/tsswarm (this binary is native/build/tsswarm-run) with the same arguments. */
static void hand_to_node(int argc, char **argv)
{
	if (print_only()) {
		puts("node");
		exit(0);
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0) {
		fprintf(stderr, "tsswarm: cannot find the Node CLI: /proc/self/exe: %s\n", strerror(errno));
		exit(1);
	}
	self[n] = 0;
	char script[PATH_MAX + 32];
	snprintf(script, sizeof script, "%s/bin/tsswarm", dirname(dirname(dirname(self))));
	char **args = calloc((size_t)argc + 2, sizeof(char *));
	if (!args) abort();
	args[0] = "node";
	args[1] = script;
	for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
	execvp("node", args);
	fprintf(stderr, "tsswarm: cannot start the Node CLI (node %s): %s\n", script, strerror(errno));
	exit(1);
}

static void write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return; /* a closed stdout: keep going, the exit code still matters */
		data += n;
		len -= (size_t)n;
	}
}

struct run_state {
	bool detach;
	bool answered; /* a message came: the daemon was reached */
	char id[160];
	int exit_code;
	bool bad_message;
};

static const char *short_id(const char *id)
{
	return strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
}

static bool on_event(void *ctx, const uint8_t *data, size_t len)
{
	struct run_state *st = ctx;
	Tsswarm__Node__V1__RunEvent *ev = tsswarm__node__v1__run_event__unpack(NULL, len, data);
	if (!ev) {
		st->bad_message = true;
		return false;
	}
	st->answered = true;
	switch (ev->event_case) {
	case TSSWARM__NODE__V1__RUN_EVENT__EVENT_CREATED:
		snprintf(st->id, sizeof st->id, "%s", ev->created->id);
		if (st->detach) printf("%s\n", st->id), fflush(stdout);
		break;
	case TSSWARM__NODE__V1__RUN_EVENT__EVENT_LOG:
		write_all(strcmp(ev->log->stream, "stderr") == 0 ? 2 : 1, ev->log->data.data, ev->log->data.len);
		break;
	case TSSWARM__NODE__V1__RUN_EVENT__EVENT_EXIT:
		st->exit_code = ev->exit->exit_code;
		if (ev->exit->error && *ev->exit->error) {
			fprintf(stderr, "tsswarm: container %.12s: %s\n", short_id(st->id), ev->exit->error);
		}
		break;
	default: break;
	}
	tsswarm__node__v1__run_event__free_unpacked(ev, NULL);
	return true;
}

int main(int argc, char **argv)
{
	struct run_command cmd;
	if (!read_run_command(argc, argv, &cmd)) hand_to_node(argc, argv);

	size_t len = tsswarm__node__v1__container_run_request__get_packed_size(&cmd.request);
	uint8_t *request = malloc(len ? len : 1);
	if (!request) abort();
	tsswarm__node__v1__container_run_request__pack(&cmd.request, request);
	if (print_only()) {
		printf("native %s ", cmd.socket_path);
		for (size_t i = 0; i < len; i++) printf("%02x", request[i]);
		printf("\n");
		return 0;
	}

	struct run_state st = { .detach = cmd.request.detach };
	struct grpc_outcome out;
	grpc_server_stream(cmd.socket_path, "/tsswarm.node.v1.NodeAPI/ContainerRun", request, len, on_event, &st, &out);
	if (st.bad_message) {
		fprintf(stderr,
		        "tsswarm: the daemon sent a RunEvent this CLI cannot read (is the daemon another version?)\n");
		return EXIT_REFUSED;
	}
	if (out.status == 0) return st.exit_code;
	/* As the Node CLI (src/cli/client.ts): UNAVAILABLE that the daemon did not send means no daemon,
   * or, once it had answered, a daemon lost on the way. */
	if (out.connected && st.answered && (out.status < 0 || (out.status == 14 && !out.daemon_answered))) {
		fprintf(stderr,
		        "tsswarm: lost the connection to the tsswarm daemon at unix://%s (%s); what it was doing may go on "
		        "without us (see tsswarm ps -a)\n",
		        cmd.socket_path, out.message);
	} else if (!out.connected || (out.status == 14 && !out.daemon_answered)) {
		fprintf(stderr, "tsswarm: cannot connect to the tsswarm daemon at unix://%s: is it running? (%s)\n",
		        cmd.socket_path, out.message);
	} else {
		fprintf(stderr, "tsswarm: %s\n", out.message[0] ? out.message : "the call ended without a status");
	}
	return EXIT_REFUSED;
}
