/* The runc-compatible command line: global flags, one function per command, one error line. */
#include "cgroup.h"
#include "container.h"
#include "exeseal.h"
#include "hooks.h"
#include "json.h"
#include "spec.h"
#include "state.h"
#include "util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *g_root = "/run/tsswarm-runtime";
static const char *g_log, *g_log_format = "text";
static const char *g_cmd = "", *g_id;

static __attribute__((noreturn)) void die(void)
{
	char line[1400];
	if (g_id)
		snprintf(line, sizeof(line), "tsswarm-runtime: %s %s: %s", g_cmd, g_id, g_err);
	else
		snprintf(line, sizeof(line), "tsswarm-runtime: %s%s%s", g_cmd, g_cmd[0] ? ": " : "", g_err);
	dprintf(2, "%s\n", line);
	if (g_log) {
		/* Callers like containerd read the error from --log; keep it there too. */
		int fd = open(g_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			if (strcmp(g_log_format, "json") == 0) {
				char buf[3000], ts[64];
				size_t pos = 0;
				now_rfc3339(ts, sizeof(ts));
				pos += (size_t)snprintf(buf, sizeof(buf), "{\"level\":\"error\",\"msg\":");
				json_escape(buf, sizeof(buf), &pos, line + 17, strlen(line + 17));
				pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, ",\"time\":\"%s\"}\n", ts);
				write_all(fd, buf, pos);
			} else {
				dprintf(fd, "%s\n", line);
			}
			close(fd);
		}
	}
	exit(1);
}

#define FAIL(...)                                                                                                      \
	do {                                                                                                           \
		seterr(__VA_ARGS__);                                                                                   \
		die();                                                                                                 \
	} while (0)

/* Accepts "--flag value", "--flag=value" and short aliases. Returns the value or NULL. */
static int opt_val(char **argv, int *i, int argc, const char *lng, const char *shrt, const char **out)
{
	const char *a = argv[*i];
	size_t ll = strlen(lng);
	if (strcmp(a, lng) == 0 || (shrt && strcmp(a, shrt) == 0)) {
		if (*i + 1 >= argc) FAIL("flag %s needs a value", lng);
		*out = argv[++*i];
		return 1;
	}
	if (strncmp(a, lng, ll) == 0 && a[ll] == '=') {
		*out = a + ll + 1;
		return 1;
	}
	/* runc uses single-dash long flags too (-bundle). */
	if (a[0] == '-' && a[1] != '-' && strcmp(a + 1, lng + 2) == 0) {
		if (*i + 1 >= argc) FAIL("flag %s needs a value", lng);
		*out = argv[++*i];
		return 1;
	}
	return 0;
}

static int is_flag(const char *a, const char *lng, const char *shrt)
{
	return strcmp(a, lng) == 0 || (shrt && strcmp(a, shrt) == 0) ||
	       (a[0] == '-' && a[1] != '-' && strcmp(a + 1, lng + 2) == 0);
}

static const char *need_id(int argc, char **argv, int i)
{
	if (i >= argc) FAIL("container id is required");
	g_id = argv[i];
	if (!valid_id(g_id)) FAIL("invalid container id");
	return g_id;
}

static int cmd_create_run(int argc, char **argv, enum start_mode mode)
{
	struct create_opts o = { .root = g_root, .bundle = ".", .mode = mode };
	int i;
	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		const char *v;
		if (opt_val(argv, &i, argc, "--bundle", "-b", &o.bundle)) continue;
		if (opt_val(argv, &i, argc, "--pid-file", NULL, &o.pidfile)) continue;
		if (opt_val(argv, &i, argc, "--preserve-fds", NULL, &v)) continue;
		if (opt_val(argv, &i, argc, "--console-socket", NULL, &v))
			FAIL("--console-socket is not supported (terminal=false only)");
		if (mode != MODE_CREATE && is_flag(argv[i], "--detach", "-d")) {
			o.mode = MODE_RUN_DETACH;
			continue;
		}
		if (mode != MODE_CREATE && is_flag(argv[i], "--keep", NULL)) {
			o.keep = 1;
			continue;
		}
		if (is_flag(argv[i], "--no-pivot", NULL) || is_flag(argv[i], "--no-new-keyring", NULL) ||
		    is_flag(argv[i], "--no-subreaper", NULL))
			continue;
		FAIL("unknown flag %s", argv[i]);
	}
	o.id = need_id(argc, argv, i);
	if (i + 1 < argc) FAIL("unexpected argument %s", argv[i + 1]);
	int rc = container_create(&o);
	if (rc < 0) die();
	return rc;
}

static int cmd_start(int argc, char **argv)
{
	const char *id = need_id(argc, argv, 0);
	struct cstate st;
	char path[4200];
	if (state_read(g_root, id, &st)) die();
	const char *status = state_status(g_root, &st);
	if (strcmp(status, "created") != 0) FAIL("cannot start a container that is %s", status);
	state_path(g_root, id, "exec.fifo", path, sizeof(path));
	/* ENXIO: nobody holds the FIFO open any more, i.e. the init died before start. */
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) FAIL("container init is gone: %s", strerror(errno));
	if (write(fd, "0", 1) != 1) FAIL("signal container init: %s", strerror(errno));
	unlink(path);
	/* Poststart hooks run once the process is executed: the init holds the FIFO open (close-on-exec)
	 * until its execve, and a FIFO's writer sees POLLERR when its last reader is gone. */
	if (hooks_wanted(g_root, &st, HOOK_POSTSTART)) {
		struct pollfd p = { fd, 0, 0 };
		while (poll(&p, 1, -1) < 0 && errno == EINTR) continue;
		hooks_warn_from_state(g_root, &st, HOOK_POSTSTART, "running");
	}
	close(fd);
	return 0;
}

static void print_state(const struct cstate *st, const char *status)
{
	static char buf[40000];
	size_t pos = 0;
#define PUT(...) pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, __VA_ARGS__)
	PUT("{\n  \"ociVersion\": \"1.0.2\",\n  \"id\": ");
	json_escape(buf, sizeof(buf), &pos, st->id, strlen(st->id));
	PUT(",\n  \"pid\": %d,\n  \"status\": \"%s\",\n  \"bundle\": ", strcmp(status, "stopped") ? (int)st->pid : 0,
	    status);
	json_escape(buf, sizeof(buf), &pos, st->bundle, strlen(st->bundle));
	PUT(",\n  \"rootfs\": ");
	json_escape(buf, sizeof(buf), &pos, st->rootfs, strlen(st->rootfs));
	PUT(",\n  \"created\": \"%s\",\n  \"owner\": \"\",\n  \"annotations\": %s\n}\n", st->created,
	    st->annotations ? st->annotations : "{}");
#undef PUT
	write_all(1, buf, pos);
}

static int cmd_state(int argc, char **argv)
{
	struct cstate st;
	if (state_read(g_root, need_id(argc, argv, 0), &st)) die();
	print_state(&st, state_status(g_root, &st));
	return 0;
}

static int cmd_kill(int argc, char **argv)
{
	int all = 0, i;
	for (i = 0; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (is_flag(argv[i], "--all", "-a")) {
			all = 1;
			continue;
		}
		FAIL("unknown flag %s", argv[i]);
	}
	const char *id = need_id(argc, argv, i);
	const char *signame = i + 1 < argc ? argv[i + 1] : "SIGTERM";
	int sig = signal_from_name(signame);
	if (sig < 0) FAIL("invalid signal \"%s\"", signame);
	struct cstate st;
	if (state_read(g_root, id, &st)) die();
	const char *status = state_status(g_root, &st);
	if (strcmp(status, "stopped") == 0) FAIL("container not running");
	if (all) {
		if (container_kill_all(g_root, id, sig)) die();
	} else if (kill(st.pid, sig) < 0) {
		FAIL("kill %d: %s", (int)st.pid, strerror(errno));
	}
	return 0;
}

static int cmd_delete(int argc, char **argv)
{
	int force = 0, i;
	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		if (is_flag(argv[i], "--force", "-f")) {
			force = 1;
			continue;
		}
		FAIL("unknown flag %s", argv[i]);
	}
	if (container_delete(g_root, need_id(argc, argv, i), force)) die();
	return 0;
}

static int cmd_pause(int argc, char **argv, int freeze)
{
	struct cstate st;
	struct cgroup cg;
	const char *id = need_id(argc, argv, 0);
	if (state_read(g_root, id, &st)) die();
	const char *status = state_status(g_root, &st);
	if (freeze && strcmp(status, "running") != 0) FAIL("container not running (%s)", status);
	if (!freeze && strcmp(status, "paused") != 0) FAIL("container not paused (%s)", status);
	if (cg_init(&cg, st.cgpath, st.cpuset) || cg_freeze(&cg, freeze)) die();
	return 0;
}

static int cmd_exec(int argc, char **argv)
{
	struct exec_opts o = { .root = g_root };
	static char *env[256];
	int i;
	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		const char *v;
		if (opt_val(argv, &i, argc, "--process", "-p", &o.process_file)) continue;
		if (opt_val(argv, &i, argc, "--cwd", NULL, &o.cwd)) continue;
		if (opt_val(argv, &i, argc, "--pid-file", NULL, &o.pidfile)) continue;
		if (opt_val(argv, &i, argc, "--env", "-e", &v)) {
			if (!strchr(v, '=')) FAIL("--env %s: expected KEY=VALUE", v);
			if (o.nenv < 255) env[o.nenv++] = (char *)v;
			continue;
		}
		if (opt_val(argv, &i, argc, "--user", "-u", &v)) {
			char *e;
			o.uid = (unsigned)strtoul(v, &e, 10);
			o.gid = 0;
			if (*e == ':') o.gid = (unsigned)strtoul(e + 1, &e, 10);
			if (*e || e == v) FAIL("--user %s: expected UID[:GID]", v);
			o.has_user = 1;
			continue;
		}
		if (is_flag(argv[i], "--detach", "-d")) {
			o.detach = 1;
			continue;
		}
		if (is_flag(argv[i], "--tty", "-t")) FAIL("--tty is not supported");
		if (strcmp(argv[i], "--") == 0) break;
		FAIL("unknown flag %s", argv[i]);
	}
	o.id = need_id(argc, argv, i);
	o.env = env;
	o.args = argv + i + 1;
	o.nargs = argc - i - 1;
	if (o.nargs && strcmp(o.args[0], "--") == 0) {
		o.args++;
		o.nargs--;
	}
	int rc = container_exec(&o);
	if (rc < 0) die();
	return rc;
}

static int cmd_ps(int argc, char **argv)
{
	const char *format = "table";
	int i;
	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		if (opt_val(argv, &i, argc, "--format", "-f", &format)) continue;
		FAIL("unknown flag %s", argv[i]);
	}
	const char *id = need_id(argc, argv, i);
	struct cstate st;
	struct cgroup cg;
	static pid_t pids[65536];
	if (state_read(g_root, id, &st) || cg_init(&cg, st.cgpath, st.cpuset)) die();
	int n = cg_pids(&cg, pids, 65536);
	if (n < 0) die();
	if (strcmp(format, "json") == 0) {
		printf("[");
		for (int k = 0; k < n; k++) printf("%s%d", k ? "," : "", (int)pids[k]);
		printf("]\n");
		return 0;
	}
	if (strcmp(format, "table") != 0) FAIL("invalid format %s (table or json)", format);
	printf("PID\tCMD\n");
	for (int k = 0; k < n; k++) {
		char path[64], cmd[4096];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pids[k]);
		ssize_t r = read_small(path, cmd, sizeof(cmd));
		for (ssize_t j = 0; j < r - 1; j++)
			if (!cmd[j]) cmd[j] = ' ';
		printf("%d\t%s\n", (int)pids[k], r > 0 ? cmd : "");
	}
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	int quiet = 0;
	const char *format = "table";
	for (int i = 0; i < argc; i++) {
		if (is_flag(argv[i], "--quiet", "-q")) {
			quiet = 1;
			continue;
		}
		if (opt_val(argv, &i, argc, "--format", "-f", &format)) continue;
		FAIL("unknown flag %s", argv[i]);
	}
	DIR *d = opendir(g_root);
	int json = strcmp(format, "json") == 0, first = 1;
	if (!quiet && !json) printf("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
	if (json) printf("[");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			struct cstate st;
			if (e->d_name[0] == '.' || !valid_id(e->d_name) || state_read(g_root, e->d_name, &st)) continue;
			const char *status = state_status(g_root, &st);
			int pid = strcmp(status, "stopped") ? (int)st.pid : 0;
			if (quiet)
				printf("%s\n", st.id);
			else if (json) {
				char b[9000];
				size_t pos = 0;
				pos += (size_t)snprintf(b, sizeof(b), "%s{\"id\":", first ? "" : ",");
				json_escape(b, sizeof(b), &pos, st.id, strlen(st.id));
				pos += (size_t)snprintf(b + pos, sizeof(b) - pos,
				                        ",\"pid\":%d,\"status\":\"%s\",\"bundle\":", pid, status);
				json_escape(b, sizeof(b), &pos, st.bundle, strlen(st.bundle));
				pos += (size_t)snprintf(b + pos, sizeof(b) - pos, ",\"created\":\"%s\"}", st.created);
				fputs(b, stdout);
				first = 0;
			} else
				printf("%s\t%d\t%s\t%s\t%s\troot\n", st.id, pid, status, st.bundle, st.created);
		}
		closedir(d);
	}
	if (json) printf("]\n");
	return 0;
}

/* `seccomp-bpf [--bundle B]`: the filter linux.seccomp compiles to, one `code jt jf k` line per
 * instruction (what seccomp-tools would disassemble): for tests of the ABIs this kernel cannot enter. */
static int cmd_seccomp_bpf(int argc, char **argv)
{
	const char *bundle = ".";
	for (int i = 0; i < argc; i++) {
		if (opt_val(argv, &i, argc, "--bundle", "-b", &bundle)) continue;
		FAIL("unknown flag %s", argv[i]);
	}
	static struct spec s;
	char *raw = NULL;
	size_t rawlen = 0;
	if (spec_load(bundle, &s, &raw, &rawlen)) die();
	if (!s.seccomp) FAIL("config.json has no linux.seccomp");
	seccomp_print(s.seccomp, stdout);
	return 0;
}

static void usage(void)
{
	dprintf(1, "usage: tsswarm-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
	           "commands: create start state kill delete run pause resume exec ps list\n");
}

int runtime_main(int argc, char **argv)
{
	int i;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *v;
		if (opt_val(argv, &i, argc, "--root", NULL, &g_root)) continue;
		if (opt_val(argv, &i, argc, "--log", NULL, &g_log)) continue;
		if (opt_val(argv, &i, argc, "--log-format", NULL, &g_log_format)) continue;
		if (opt_val(argv, &i, argc, "--criu", NULL, &v)) continue;
		if (opt_val(argv, &i, argc, "--cgroup-manager", NULL, &v)) {
			if (strcmp(v, "cgroupfs") != 0) FAIL("--cgroup-manager %s is not supported (cgroupfs only)", v);
			continue;
		}
		if (is_flag(argv[i], "--systemd-cgroup", NULL))
			FAIL("--systemd-cgroup is not supported: cgroups are managed through cgroupfs");
		if (is_flag(argv[i], "--debug", NULL)) continue;
		if (is_flag(argv[i], "--help", "-h")) {
			usage();
			return 0;
		}
		if (is_flag(argv[i], "--version", "-v")) {
			printf("tsswarm-runtime version 0.1.0\nspec: 1.0.2\n");
			return 0;
		}
		FAIL("unknown global flag %s", argv[i]);
	}
	if (i >= argc) {
		usage();
		return 1;
	}
	g_cmd = argv[i];
	int n = argc - i - 1;
	char **a = argv + i + 1;
	signal(SIGPIPE, SIG_DFL);
	/* The commands that execve inside a container run from a copy of this binary that the
	 * container cannot write (CVE-2019-5736); the others stay as fast as they were. */
	if ((!strcmp(g_cmd, "create") || !strcmp(g_cmd, "run") || !strcmp(g_cmd, "exec")) && exe_seal(argv)) die();
	if (!strcmp(g_cmd, "create")) return cmd_create_run(n, a, MODE_CREATE);
	if (!strcmp(g_cmd, "run")) return cmd_create_run(n, a, MODE_RUN);
	if (!strcmp(g_cmd, "start")) return cmd_start(n, a);
	if (!strcmp(g_cmd, "state")) return cmd_state(n, a);
	if (!strcmp(g_cmd, "kill")) return cmd_kill(n, a);
	if (!strcmp(g_cmd, "delete")) return cmd_delete(n, a);
	if (!strcmp(g_cmd, "pause")) return cmd_pause(n, a, 1);
	if (!strcmp(g_cmd, "resume")) return cmd_pause(n, a, 0);
	if (!strcmp(g_cmd, "exec")) return cmd_exec(n, a);
	if (!strcmp(g_cmd, "ps")) return cmd_ps(n, a);
	if (!strcmp(g_cmd, "list")) return cmd_list(n, a);
	if (!strcmp(g_cmd, "seccomp-bpf")) return cmd_seccomp_bpf(n, a);
	g_cmd = "";
	FAIL("unknown command \"%s\"", argv[i]);
}
