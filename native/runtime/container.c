#include "container.h"
#include "cgroup.h"
#include "child.h"
#include "hooks.h"
#include "process.h"
#include "rootfs.h"
#include "state.h"
#include "util.h"
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum { MSG_MAPS = 1, MSG_CGROUP_DIRS, MSG_CGROUP_OK, MSG_READY, MSG_ERROR, MSG_GO, MSG_HOOKS, MSG_HOOKS_DONE };
struct msg {
	int type;
	char text[1000];
};

static int sync_fd = -1;
static int cgroup_stage; /* last cgroup message seen by the child: DIRS, then OK */
static const struct spec *g_spec;
static struct cgroup *g_cg;
static const struct create_opts *g_opts;
static const char *g_bundle;
static pid_t g_host_pid; /* the init's pid as the host sees it (MSG_CGROUP_OK carries it) */

static int send_msg(int fd, int type, const char *text)
{
	struct msg m = { .type = type };
	if (text) snprintf(m.text, sizeof(m.text), "%s", text);
	size_t n = offsetof(struct msg, text) + (text ? strlen(m.text) + 1 : 0);
	return send(fd, &m, n, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int recv_msg(int fd, struct msg *m)
{
	memset(m, 0, sizeof(*m));
	for (int resets = 0;;) {
		ssize_t r = recv(fd, m, sizeof(*m) - 1, 0);
		if (r < 0 && errno == EINTR) continue;
		/* A peer that exits with our message unread makes the kernel report ECONNRESET once,
		 * ahead of what it had already sent us (its error): read on. */
		if (r < 0 && errno == ECONNRESET && resets++ < 2) continue;
		return r <= 0 ? -1 : 0;
	}
}

/* The parent creates the cgroup dirs (DIRS) and then moves us in (OK) while we build the rootfs:
 * the cgroup mount needs only the dirs; only exec (and a cgroup namespace) needs the move. */
static void child_wait(int stage)
{
	while (cgroup_stage < stage) {
		struct msg m;
		if (recv_msg(sync_fd, &m) < 0 || (m.type != MSG_CGROUP_DIRS && m.type != MSG_CGROUP_OK))
			_exit(1); /* parent gone: nothing to report to */
		cgroup_stage = m.type;
		if (m.type == MSG_CGROUP_OK && m.text[0]) g_host_pid = (pid_t)atoi(m.text);
	}
}

static int child_wait_cgroup(void)
{
	child_wait(MSG_CGROUP_DIRS);
	return 0;
}

/* The state a hook reads on stdin, from the container's side. */
static void child_hook_state(char *out, size_t cap, const char *status)
{
	static struct cstate cs;
	snprintf(cs.id, sizeof(cs.id), "%s", g_opts->id);
	snprintf(cs.bundle, sizeof(cs.bundle), "%s", g_bundle);
	cs.pid = g_host_pid;
	hooks_state(out, cap, g_spec, &cs, status);
}

/* Right before pivot_root: the parent runs prestart and createRuntime hooks (in the runtime's
 * namespaces), then we run createContainer hooks here, in the container's namespaces with the
 * host's paths still in view, as the runtime spec orders them. */
static int child_before_pivot(void)
{
	const struct spec *s = g_spec;
	if (s->nhooks[HOOK_PRESTART] || s->nhooks[HOOK_CREATE_RUNTIME]) {
		struct msg m;
		child_wait(MSG_CGROUP_OK);
		send_msg(sync_fd, MSG_HOOKS, NULL);
		if (recv_msg(sync_fd, &m) < 0 || m.type != MSG_HOOKS_DONE) _exit(1); /* the parent reports */
	}
	if (s->nhooks[HOOK_CREATE_CONTAINER]) {
		static char st[20000];
		child_wait(MSG_CGROUP_OK);
		child_hook_state(st, sizeof(st), "creating");
		if (hooks_run(s, HOOK_CREATE_CONTAINER, st)) return -1;
	}
	return 0;
}

/* Hooks whose failure the spec turns into a warning (poststart, poststop). */
static void hooks_warn(const struct spec *s, enum hook_kind kind, const struct cstate *cs, const char *status)
{
	static char st[20000];
	if (!s->nhooks[kind]) return;
	hooks_state(st, sizeof(st), s, cs, status);
	if (hooks_run(s, kind, st)) dprintf(2, "tsswarm-runtime: %s: warning: %s\n", cs->id, g_err);
}

/* Poststart hooks run once the container's process is executed: the init holds the sync socket
 * (close-on-exec) until its execve, so its end of file says exactly that. */
static void poststart(const struct spec *s, const struct cstate *cs, int fd)
{
	if (s->nhooks[HOOK_POSTSTART]) {
		char c;
		while (recv(fd, &c, 1, 0) > 0 || errno == EINTR) continue;
	}
	close(fd);
	hooks_warn(s, HOOK_POSTSTART, cs, "running");
}

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

/* Namespaces joined by path, opened before we join any: once in another mount namespace the
 * paths (/proc/PID/ns/... of the host) would name other things or nothing. */
static const int joinable[] = { CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNS, CLONE_NEWCGROUP };
#define NJOIN (int)(sizeof(joinable) / sizeof(joinable[0]))
static int join_fd[NJOIN];

static int open_ns_paths(const struct spec *s)
{
	for (int i = 0; i < NJOIN; i++) {
		const char *p;
		join_fd[i] = -1;
		if (ns_path_for(s, joinable[i], &p) && p) {
			join_fd[i] = open(p, O_RDONLY | O_CLOEXEC);
			if (join_fd[i] < 0) return seterr("namespace %s: %s", p, strerror(errno));
		}
	}
	return 0;
}

static int join_opened(const struct spec *s, int flag)
{
	for (int i = 0; i < NJOIN; i++)
		if (joinable[i] == flag && join_fd[i] >= 0) {
			const char *p = "";
			ns_path_for(s, flag, &p);
			int r = setns(join_fd[i], flag), e = errno;
			close(join_fd[i]);
			join_fd[i] = -1;
			return r < 0 ? seterr("join namespace %s: %s", p, strerror(e)) : 0;
		}
	return 0;
}

static int join_ns(const char *path, int flag)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return seterr("namespace %s: %s", path, strerror(errno));
	int r = setns(fd, flag);
	int e = errno;
	close(fd);
	return r < 0 ? seterr("join namespace %s: %s", path, strerror(e)) : 0;
}

static __attribute__((noreturn)) void child_fail(void)
{
	send_msg(sync_fd, MSG_ERROR, g_err);
	_exit(1);
}

static __attribute__((noreturn)) void child_main(const struct create_opts *o, int fifo_mode)
{
	const struct spec *s = g_spec;
	struct msg m;
	char path[4096];
	/* Until it execs the container's process, nothing in the container may open our /proc files
	 * (exe, fds, memory): not dumpable means only CAP_SYS_PTRACE on the host could. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (open_ns_paths(s)) child_fail();
	/* v1, no user namespace: we move ourselves (cheap); the cgroup dirs were made before clone.
	 * In a user namespace the cgroup files are not ours to write: the parent moves us then. */
	if (!g_cg->v2 && !(s->ns_flags & CLONE_NEWUSER) && cg_enter_self(g_cg)) child_fail();
	if (s->ns_flags & CLONE_NEWUSER) {
		if (recv_msg(sync_fd, &m) < 0 || m.type != MSG_MAPS) _exit(1);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			seterr("become root in the user namespace: %s", strerror(errno));
			child_fail();
		}
	}
	/* the mount namespace last of these; the cgroup one once we are in our cgroup (below) */
	for (int i = 0; i < NJOIN; i++)
		if (joinable[i] != CLONE_NEWCGROUP && join_opened(s, joinable[i])) child_fail();
	const char *uts_path;
	if (s->hostname && s->hostname[0]) {
		if (!ns_path_for(s, CLONE_NEWUTS, &uts_path)) {
			seterr("hostname is set but no new uts namespace is requested");
			child_fail();
		}
		if (sethostname(s->hostname, strlen(s->hostname)) < 0) {
			seterr("sethostname: %s", strerror(errno));
			child_fail();
		}
	}
	if (s->ns_flags & CLONE_NEWNET) lo_up();
	/* Sysctls now, in our namespaces but before the rootfs is built: the spec's readonlyPaths make
	 * /proc/sys read-only in there. The sysctl tables resolve by the writer's namespaces, so the
	 * host's /proc, still mounted here, writes the container's values (spec.c allowed only
	 * namespaced keys). */
	for (int i = 0; i < s->nsysctl; i++) {
		char p[512];
		int n = snprintf(p, sizeof(p), "/proc/sys/%s", s->sysctl_k[i]);
		for (char *c = p + 10; c < p + n; c++)
			if (*c == '.') *c = '/';
		if (write_str(p, s->sysctl_v[i]) < 0) {
			seterr("sysctl %s: %s", s->sysctl_k[i], strerror(errno));
			child_fail();
		}
	}
	int fifo = -1;
	if (fifo_mode) {
		/* O_RDWR never blocks on a FIFO; the read below waits for `start` to write one byte. */
		state_path(o->root, o->id, "exec.fifo", path, sizeof(path));
		fifo = open(path, O_RDWR | O_CLOEXEC);
		if (fifo < 0) {
			seterr("open %s: %s", path, strerror(errno));
			child_fail();
		}
	}
	if (rootfs_setup(s, g_cg, (s->ns_flags & CLONE_NEWUSER) != 0, child_wait_cgroup, child_before_pivot))
		child_fail();
	const char *cgp;
	if (ns_path_for(s, CLONE_NEWCGROUP, &cgp)) {
		child_wait(MSG_CGROUP_OK);
		/* After the move into the container's cgroup, so that cgroup becomes the namespace root. */
		if (cgp ? join_opened(s, CLONE_NEWCGROUP)
		        : (unshare(CLONE_NEWCGROUP) < 0 ? seterr("unshare cgroup namespace: %s", strerror(errno)) : 0))
			child_fail();
	}
	/* Descriptors inherited from whoever called us (Node, a shell) must not leak into the container. */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	/* Without no_new_privs the filter can only be installed while we still hold CAP_SYS_ADMIN, so
	 * it then also covers our last setup steps (as with runc); with it, it is the very last step. */
	if (s->seccomp && !s->proc.no_new_privs && seccomp_load(s->seccomp)) child_fail();
	if (process_prepare(&s->proc, path, sizeof(path))) child_fail();
	child_wait(MSG_CGROUP_OK);
	send_msg(sync_fd, MSG_READY, NULL);
	if (fifo_mode) {
		close(sync_fd);
		char c;
		ssize_t r;
		while ((r = read(fifo, &c, 1)) < 0 && errno == EINTR) continue;
		if (r != 1) _exit(1);
	} else if (recv_msg(sync_fd, &m) < 0 || m.type != MSG_GO) {
		_exit(1);
	}
	if (s->nhooks[HOOK_START_CONTAINER]) {
		/* in the container, before its process: a failure stops the container */
		static char st[20000];
		child_hook_state(st, sizeof(st), "created");
		if (hooks_run(s, HOOK_START_CONTAINER, st)) {
			dprintf(2, "tsswarm-runtime: %s: %s\n", o->id, g_err);
			_exit(127);
		}
	}
	if (s->seccomp && s->proc.no_new_privs && seccomp_load(s->seccomp)) {
		dprintf(2, "tsswarm-runtime: %s: %s\n", o->id, g_err);
		_exit(127);
	}
	process_exec(&s->proc, path);
	dprintf(2, "tsswarm-runtime: %s: %s\n", o->id, g_err);
	_exit(127);
}

/* The child's own explanation beats ours (ESRCH from a cgroup write means nothing to a user). */
static void child_error(int fd)
{
	struct msg m;
	memset(&m, 0, sizeof(m));
	for (int i = 0; i < 2; i++) {
		ssize_t r = recv(fd, &m, sizeof(m) - 1, MSG_DONTWAIT);
		if (r > 0 && m.type == MSG_ERROR) {
			seterr("%s", m.text);
			return;
		}
		if (!(r < 0 && errno == ECONNRESET)) return;
	}
}

static int write_idmap(pid_t pid, const char *file, const struct idmap *m, int n)
{
	char path[64], buf[1024];
	size_t pos = 0;
	for (int i = 0; i < n; i++)
		pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "%u %u %u\n", m[i].cid, m[i].hid, m[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if (write_str(path, buf) < 0) return seterr("write %s: %s", file, strerror(errno));
	return 0;
}

/* TSSWARM_RUNTIME_TIMING=1 prints where create/run spends its time (to tune the overlap). */
static int timing = -1;
static struct timespec t_start;
static void mark(const char *what)
{
	if (timing < 0) {
		timing = getenv("TSSWARM_RUNTIME_TIMING") != NULL;
		clock_gettime(CLOCK_MONOTONIC, &t_start);
	}
	if (!timing) return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	dprintf(2, "timing %-10s %.3f ms\n", what,
	        (double)(now.tv_sec - t_start.tv_sec) * 1e3 + (double)(now.tv_nsec - t_start.tv_nsec) / 1e6);
}

int container_create(const struct create_opts *o)
{
	static struct spec s;
	static struct cgroup cg;
	char *raw = NULL, path[4200], statedir[4200];
	size_t rawlen = 0;
	char bundle[4096];
	mark("start");
	if (!valid_id(o->id)) return seterr("invalid container id (use letters, digits, _ . -)");
	if (!realpath(o->bundle, bundle)) return seterr("bundle %s: %s", o->bundle, strerror(errno));
	if (spec_load(bundle, &s, &raw, &rawlen)) return -1;
	struct stat st;
	if (stat(s.root_path, &st) < 0 || !S_ISDIR(st.st_mode))
		return seterr("config.json: root.path: %s is not a directory", s.root_path);
	char cgpath[1100];
	if (s.cgroups_path)
		snprintf(cgpath, sizeof(cgpath), "%s", s.cgroups_path);
	else
		snprintf(cgpath, sizeof(cgpath), "/%s", o->id);
	int want_cpuset = (s.res.cpus && *s.res.cpus) || (s.res.mems && *s.res.mems);
	if (cg_init(&cg, cgpath, want_cpuset)) return -1;
	mark("parsed");
	g_spec = &s;
	g_cg = &cg;
	g_opts = o;
	g_bundle = bundle;

	/* mkdir is the atomic claim on the id. */
	if (mkdir(o->root, 0711) < 0 && errno != EEXIST && mkdir_p(o->root, 0711) < 0)
		return seterr("state root %s: %s", o->root, strerror(errno));
	state_path(o->root, o->id, NULL, statedir, sizeof(statedir));
	if (mkdir(statedir, 0711) < 0) {
		if (errno == EEXIST) return seterr("container with id \"%s\" already exists", o->id);
		return seterr("mkdir %s: %s", statedir, strerror(errno));
	}
	state_path(o->root, o->id, "config.json", path, sizeof(path));
	if (write_atomic(path, raw, rawlen) < 0) {
		seterr("write %s: %s", path, strerror(errno));
		goto fail_state;
	}
	int fifo_mode = o->mode == MODE_CREATE;
	if (fifo_mode) {
		state_path(o->root, o->id, "exec.fifo", path, sizeof(path));
		if (mkfifo(path, 0600) < 0) {
			seterr("mkfifo %s: %s", path, strerror(errno));
			goto fail_state;
		}
	}
	const char *pidns_path;
	if (ns_path_for(&s, CLONE_NEWPID, &pidns_path) && pidns_path && join_ns(pidns_path, CLONE_NEWPID))
		goto fail_state;

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		seterr("socketpair: %s", strerror(errno));
		goto fail_state;
	}
	fflush(NULL);
	mark("pre-clone");
	int flags = (s.ns_flags & ~CLONE_NEWCGROUP) | SIGCHLD;
	pid_t pid;
	/* The cgroup exists before the child, which then moves itself in (v1, see cg_enter_self)
	 * or is born in it (v2): no slow cgroup.procs write by us on the start path. */
	if (cg_create(&cg, &s.res)) {
		close(sp[0]);
		close(sp[1]);
		goto fail_state;
	}
	mark("cg-dirs");
	if (cg.v2 || cg.has_unified) {
		/* v2: the child is born in its cgroup (clone3 CLONE_INTO_CGROUP), so no migration at all;
		 * on a hybrid host, in its unified-tree cgroup (then it moves itself into the v1 ones). */
		pid = cg_clone_into(&cg, (unsigned long)(s.ns_flags & ~CLONE_NEWCGROUP));
	} else {
		pid = (pid_t)syscall(SYS_clone, (unsigned long)flags, NULL, NULL, NULL, 0UL);
	}
	if (pid < 0) {
		seterr("clone: %s", strerror(errno));
		char keep[sizeof(g_err)];
		memcpy(keep, g_err, sizeof(keep));
		cg_destroy(&cg);
		memcpy(g_err, keep, sizeof(keep));
		close(sp[0]);
		close(sp[1]);
		goto fail_state;
	}

	if (pid == 0) {
		close(sp[0]);
		sync_fd = sp[1];
		child_main(o, fifo_mode);
	}
	close(sp[1]);
	mark("cloned");
	static struct cstate hs; /* what hooks are told before the state is written */
	memset(&hs, 0, sizeof(hs));
	snprintf(hs.id, sizeof(hs.id), "%s", o->id);
	snprintf(hs.bundle, sizeof(hs.bundle), "%s", bundle);
	hs.pid = pid;
	int fd = sp[0];
	struct msg m;
	if (s.ns_flags & CLONE_NEWUSER) {
		if (write_idmap(pid, "uid_map", s.uidmap, s.nuid) || write_idmap(pid, "gid_map", s.gidmap, s.ngid))
			goto fail_child;
		send_msg(fd, MSG_MAPS, NULL);
	}
	/* The child builds its rootfs while we create the cgroup and pay the first-move cost
	 * (an RCU grace period in the kernel for v1): the two overlap instead of adding up. */
	send_msg(fd, MSG_CGROUP_DIRS, NULL);
	if (!cg.v2 && (s.ns_flags & CLONE_NEWUSER) && cg_attach(&cg, pid)) {
		child_error(fd);
		goto fail_child;
	}
	mark("cg-attach");
	/* If the child already failed, this send gets EPIPE but its error is still queued for recv. */
	char pidtext[24];
	snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
	send_msg(fd, MSG_CGROUP_OK, pidtext);
	for (;;) {
		if (recv_msg(fd, &m) < 0) {
			seterr("container init exited during setup");
			goto fail_child;
		}
		if (m.type != MSG_HOOKS) break;
		static char st[20000];
		hooks_state(st, sizeof(st), &s, &hs, "creating");
		if (hooks_run(&s, HOOK_PRESTART, st) || hooks_run(&s, HOOK_CREATE_RUNTIME, st)) goto fail_child;
		send_msg(fd, MSG_HOOKS_DONE, NULL);
	}
	if (m.type == MSG_ERROR) {
		seterr("%s", m.text);
		goto fail_child;
	}
	mark("ready");

	struct cstate cs;
	memset(&cs, 0, sizeof(cs));
	snprintf(cs.id, sizeof(cs.id), "%s", o->id);
	cs.pid = pid;
	cs.start = proc_starttime(pid);
	snprintf(cs.bundle, sizeof(cs.bundle), "%s", bundle);
	snprintf(cs.rootfs, sizeof(cs.rootfs), "%s", s.root_path);
	now_rfc3339(cs.created, sizeof(cs.created));
	snprintf(cs.cgpath, sizeof(cs.cgpath), "%s", cgpath);
	cs.pidns = (s.ns_flags & CLONE_NEWPID) != 0;
	cs.cpuset = want_cpuset;
	static char ann[16384];
	size_t apos = 0;
	if (s.annotations && json_write(ann, sizeof(ann), &apos, s.annotations) == 0) cs.annotations = ann;
	if (state_write(o->root, &cs)) goto fail_child;
	if (o->pidfile) {
		char b[24];
		int n = snprintf(b, sizeof(b), "%d", (int)pid);
		if (write_atomic(o->pidfile, b, (size_t)n) < 0) {
			seterr("pid file %s: %s", o->pidfile, strerror(errno));
			goto fail_child;
		}
	}
	if (o->mode == MODE_CREATE) {
		close(fd);
		return 0;
	}
	if (o->mode == MODE_RUN_DETACH) {
		send_msg(fd, MSG_GO, NULL);
		poststart(&s, &cs, fd);
		return 0;
	}

	install_forwarding(pid);
	send_msg(fd, MSG_GO, NULL);
	poststart(&s, &cs, fd);
	int status = 0;
	reap(pid, &status);
	fwd_pid = 0;
	mark("exited");
	int code = exit_code(status);
	if (!o->keep) {
		cg_destroy(&cg);
		state_remove(o->root, o->id);
		hooks_warn(&s, HOOK_POSTSTOP, &cs, "stopped");
	}
	mark("cleaned");
	return code;

fail_child:
	kill(pid, SIGKILL);
	reap(pid, NULL);
	{
		/* The spec: a failed create goes on to delete, whose poststop hooks run (warnings only). */
		char keep[sizeof(g_err)];
		memcpy(keep, g_err, sizeof(keep));
		cg_destroy(&cg);
		hs.pid = 0;
		hooks_warn(&s, HOOK_POSTSTOP, &hs, "stopped");
		memcpy(g_err, keep, sizeof(keep));
	}
	close(fd);
	goto fail_state;
fail_state:
	state_remove(o->root, o->id);
	return -1;
}

/* ---- kill / delete ---- */

int container_kill_all(const char *root, const char *id, int sig)
{
	struct cstate st;
	struct cgroup cg;
	pid_t pids[4096];
	if (state_read(root, id, &st) || cg_init(&cg, st.cgpath, st.cpuset)) return -1;
	int n = cg_pids(&cg, pids, 4096);
	if (n < 0) return -1;
	for (int i = 0; i < n; i++) kill(pids[i], sig);
	return 0;
}

static int wait_gone(pid_t pid, unsigned long long start, int ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		/* The pid may have been reused between the check and pidfd_open. */
		if (proc_starttime(pid) != start) {
			close(pfd);
			return 0;
		}
		struct pollfd pf = { pfd, POLLIN, 0 };
		int r = poll(&pf, 1, ms);
		close(pfd);
		return r > 0 ? 0 : -1;
	}
	for (int i = 0; i < ms; i++) {
		if (proc_starttime(pid) != start) return 0;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

int container_delete(const char *root, const char *id, int force)
{
	struct cstate st;
	struct cgroup cg;
	if (state_read(root, id, &st)) return -1;
	if (cg_init(&cg, st.cgpath, st.cpuset)) return -1;
	const char *status = state_status(root, &st);
	if (strcmp(status, "stopped") != 0) {
		if (!force && strcmp(status, "created") != 0)
			return seterr("cannot delete container %s that is not stopped: %s (use --force)", id, status);
		/* Without a pid namespace, killing init would orphan the rest: kill the whole cgroup. */
		pid_t pids[4096];
		int n = st.pidns ? 0 : cg_pids(&cg, pids, 4096);
		kill(st.pid, SIGKILL);
		for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
		if (strcmp(status, "paused") == 0) cg_freeze(&cg, 0); /* frozen tasks cannot die */
		if (wait_gone(st.pid, st.start, 10000) < 0)
			return seterr("container %s: init %d did not exit after SIGKILL", id, (int)st.pid);
	}
	int rc = cg_destroy(&cg);
	/* after the container is gone, before delete returns; the config is in the state dir */
	char keep[sizeof(g_err)];
	memcpy(keep, g_err, sizeof(keep));
	st.pid = 0;
	hooks_warn_from_state(root, &st, HOOK_POSTSTOP, "stopped");
	memcpy(g_err, keep, sizeof(keep));
	state_remove(root, id);
	return rc;
}
