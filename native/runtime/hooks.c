#include "hooks.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void hooks_state(char *out, size_t cap, const struct spec *s, const struct cstate *cs, const char *status)
{
	size_t pos = 0;
	pos += (size_t)snprintf(out, cap, "{\"ociVersion\":");
	json_escape(out, cap, &pos, s->oci_version, strlen(s->oci_version));
	pos += (size_t)snprintf(out + pos, cap > pos ? cap - pos : 0, ",\"id\":");
	json_escape(out, cap, &pos, cs->id, strlen(cs->id));
	pos += (size_t)snprintf(out + pos, cap > pos ? cap - pos : 0,
	                        ",\"status\":\"%s\",\"pid\":%d,\"bundle\":", status, (int)cs->pid);
	json_escape(out, cap, &pos, cs->bundle, strlen(cs->bundle));
	pos += (size_t)snprintf(out + pos, cap > pos ? cap - pos : 0, ",\"annotations\":");
	if (!s->annotations || json_write(out, cap, &pos, s->annotations) < 0)
		pos += (size_t)snprintf(out + pos, cap > pos ? cap - pos : 0, "{}");
	if (pos < cap) snprintf(out + pos, cap - pos, "}");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_one(const struct hook *h, const char *kind, const char *state)
{
	int in[2], errp[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return seterr("%s hook %s: pipe: %s", kind, h->path, strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) return seterr("%s hook %s: fork: %s", kind, h->path, strerror(errno));
	if (pid == 0) {
		dup2(in[0], 0);
		execve(h->path, h->args, h->env);
		int e = errno;
		write_all(errp[1], &e, sizeof(e));
		_exit(127);
	}
	close(in[0]);
	close(errp[1]);
	/* The state is small (well under a pipe's buffer): write it all, then EOF. */
	signal(SIGPIPE, SIG_IGN);
	write_all(in[1], state, strlen(state));
	close(in[1]);
	int e = 0;
	ssize_t r = read(errp[0], &e, sizeof(e));
	close(errp[0]);
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int timed_out = 0;
	if (h->timeout > 0 && pfd >= 0) {
		double end = now_s() + h->timeout;
		for (;;) {
			struct pollfd p = { pfd, POLLIN, 0 };
			double left = end - now_s();
			if (left <= 0) {
				timed_out = 1;
				kill(pid, SIGKILL);
				break;
			}
			int n = poll(&p, 1, (int)(left * 1000) + 1);
			if (n > 0) break;
			if (n < 0 && errno != EINTR) break;
		}
	}
	if (pfd >= 0) close(pfd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) continue;
	if (r == (ssize_t)sizeof(e)) return seterr("%s hook %s: exec: %s", kind, h->path, strerror(e));
	if (timed_out) return seterr("%s hook %s: timed out after %d s", kind, h->path, h->timeout);
	if (WIFSIGNALED(st)) return seterr("%s hook %s: killed by signal %d", kind, h->path, WTERMSIG(st));
	if (WEXITSTATUS(st) != 0) return seterr("%s hook %s: exit status %d", kind, h->path, WEXITSTATUS(st));
	return 0;
}

int hooks_wanted(const char *root, const struct cstate *st, enum hook_kind kind)
{
	char path[4200], key[40];
	state_path(root, st->id, "config.json", path, sizeof(path));
	char *text = read_file(path, NULL);
	snprintf(key, sizeof(key), "\"%s\"", hook_names[kind]);
	int found = text && strstr(text, key) != NULL;
	free(text);
	return found;
}

void hooks_warn_from_state(const char *root, const struct cstate *st, enum hook_kind kind, const char *status)
{
	static struct spec s;
	static char state[20000], path[4200], key[40];
	state_path(root, st->id, "config.json", path, sizeof(path));
	size_t len;
	char *text = read_file(path, &len);
	snprintf(key, sizeof(key), "\"%s\"", hook_names[kind]);
	if (!text || !strstr(text, key)) {
		free(text);
		return;
	}
	if (spec_parse_text(text, len, st->bundle, &s) == 0) {
		hooks_state(state, sizeof(state), &s, st, status);
		if (hooks_run(&s, kind, state) == 0) return;
	}
	dprintf(2, "tsswarm-runtime: %s: warning: %s\n", st->id, g_err);
}

int hooks_run(const struct spec *s, enum hook_kind kind, const char *state)
{
	for (int i = 0; i < s->nhooks[kind]; i++)
		if (run_one(&s->hooks[kind][i], hook_names[kind], state)) return -1;
	return 0;
}
