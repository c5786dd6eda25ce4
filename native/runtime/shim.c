/* tsswarm-shim: one small long-lived process per container. It owns the container's stdio (logged
 * as docker json-file lines), reaps the init as a subreaper and records how it ended in exit.json,
 * so the daemon can die and come back without losing a container or its exit status. */
#include "container.h"
#include "exeseal.h"
#include "json.h"
#include "jsonlog.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RT_ARGS 32

static const char *rt_path, *rt_args[MAX_RT_ARGS];
static int n_rt_args;
static char id[1100], bundle[4096], statedir[4096], logpath[4096];
static const char *lower, *upper, *work;
static int hide_cg2;
static char rootfs[4096];
static int overlay_mounted, host_mntns = -1, log_fd = -1;

static __attribute__((noreturn)) void usage_fail(const char *msg)
{
	dprintf(2, "tsswarm-shim: %s\n", msg);
	exit(1);
}

static void reset_child_signals(void)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
}

/* Runs the runtime with the given command; stdout/stderr go to out/err (or /dev/null if -1). */
static pid_t spawn_runtime(const char *const *cmd, int out, int err)
{
	const char *argv[MAX_RT_ARGS + 16];
	int n = 0;
	argv[n++] = rt_path;
	for (int i = 0; i < n_rt_args; i++) argv[n++] = rt_args[i];
	for (int i = 0; cmd[i]; i++) argv[n++] = cmd[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid != 0) return pid;
	reset_child_signals();
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0);
	dup2(out >= 0 ? out : nul, 1);
	dup2(err >= 0 ? err : nul, 2);
	execv(rt_path, (char **)argv);
	dprintf(2, "exec %s: %s\n", rt_path, strerror(errno));
	_exit(127);
}

/* When --runtime is this very binary with at most --root: the state root to use, else NULL. */
static const char *own_runtime_root(void)
{
	struct stat a, b;
	if (stat(rt_path, &a) < 0 || stat("/proc/self/exe", &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return NULL;
	const char *root = "/run/tsswarm-runtime";
	for (int i = 0; i < n_rt_args; i++) {
		if (!strcmp(rt_args[i], "--root") && i + 1 < n_rt_args)
			root = rt_args[++i];
		else if (!strncmp(rt_args[i], "--root=", 7))
			root = rt_args[i] + 7;
		else
			return NULL;
	}
	return root;
}

static int wait_for(pid_t pid);

/* Our own runtime needs no exec: a forked child runs create and start (run -d) in-process and
 * exits; the init it leaves is re-parented to us, the subreaper. Saves two execs per start. */
static int create_start_inproc(const char *root, const char *pidpath, int outfd, int errfd, char *msg, size_t cap)
{
	int ep[2];
	msg[0] = 0;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		snprintf(msg, cap, "pipe: %s", strerror(errno));
		return 1;
	}
	pid_t p = fork();
	if (p < 0) {
		snprintf(msg, cap, "fork: %s", strerror(errno));
		close(ep[0]);
		close(ep[1]);
		return 1;
	}
	if (p == 0) {
		reset_child_signals();
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(outfd, 1);
		dup2(errfd, 2);
		close(ep[0]);
		struct create_opts o = {
			.root = root, .id = id, .bundle = bundle, .pidfile = pidpath, .mode = MODE_RUN_DETACH
		};
		if (container_create(&o) < 0) {
			dprintf(ep[1], "tsswarm-runtime: create %s: %s", id, g_err);
			_exit(1);
		}
		_exit(0);
	}
	close(ep[1]);
	int rc = wait_for(p);
	ssize_t n = read(ep[0], msg, cap - 1);
	msg[n > 0 ? n : 0] = 0;
	close(ep[0]);
	return rc;
}

/* runtime delete --force ID, in a forked child when the runtime is ours; reaps strays meanwhile. */
static void delete_container(void)
{
	const char *root = own_runtime_root();
	pid_t dp;
	if (root) {
		dp = fork();
		if (dp == 0) {
			reset_child_signals();
			_exit(container_delete(root, id, 1) < 0 ? 1 : 0);
		}
	} else {
		const char *del[] = { "delete", "--force", id, NULL };
		dp = spawn_runtime(del, -1, -1);
	}
	if (dp < 0) return;
	int st;
	pid_t p;
	/* Keep reaping re-parented leftovers while delete runs. */
	while ((p = waitpid(-1, &st, 0)) > 0 || (p < 0 && errno == EINTR))
		if (p == dp) break;
}

static int wait_for(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Last non-empty line of whatever the runtime printed: that is its error message. */
static void last_line(int fd, char *out, size_t cap)
{
	static char buf[8192];
	size_t n = 0;
	ssize_t r;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) n += (size_t)r;
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
	char *l = strrchr(buf, '\n');
	snprintf(out, cap, "%s", l ? l + 1 : buf);
	fcntl(fd, F_SETFL, 0);
}

static void unmount_overlay(void)
{
	if (!overlay_mounted) return;
	/* The overlay was mounted in the host namespace; with --hide-cgroup2 we live in a private one. */
	if (host_mntns >= 0) setns(host_mntns, CLONE_NEWNS);
	if (umount2(rootfs, 0) < 0) umount2(rootfs, MNT_DETACH);
	overlay_mounted = 0;
}

static int find_rootfs(char *err, size_t errlen)
{
	char path[4200], perr[200];
	size_t len;
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	char *text = read_file(path, &len);
	if (!text) {
		snprintf(err, errlen, "bundle %s: config.json: %s", bundle, strerror(errno));
		return -1;
	}
	struct jval *v = json_parse(text, len, perr, sizeof(perr));
	struct jval *root = v ? json_get(v, "root") : NULL, *p = root ? json_get(root, "path") : NULL;
	if (!p || p->t != J_STR || !p->s[0]) {
		snprintf(err, errlen, "config.json: %s", v ? "root.path: expected a string" : perr);
		return -1;
	}
	if (p->s[0] == '/')
		snprintf(rootfs, sizeof(rootfs), "%s", p->s);
	else
		snprintf(rootfs, sizeof(rootfs), "%s/%s", bundle, p->s);
	return 0;
}

static int mount_overlay_fsconfig(char *err, size_t errlen)
{
	static char layers[16384];
	int fs = fsopen("overlay", FSOPEN_CLOEXEC), rc = -1;
	if (fs < 0) {
		snprintf(err, errlen, "overlay: fsopen: %s", strerror(errno));
		return -1;
	}
	snprintf(layers, sizeof(layers), "%s", lower);
	const char *what = "source";
	if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0) goto out;
	for (char *save, *l = strtok_r(layers, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
		what = "lowerdir+";
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", l, 0) < 0) goto out;
	}
	what = "upperdir";
	if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0) goto out;
	what = "workdir";
	if (fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) goto out;
	what = "create";
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) goto out;
	what = "fsmount";
	int mfd = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
	if (mfd < 0) goto out;
	what = "move_mount";
	rc = move_mount(mfd, "", AT_FDCWD, rootfs, MOVE_MOUNT_F_EMPTY_PATH);
	close(mfd);
out:
	if (rc < 0) snprintf(err, errlen, "overlay mount on %s (%s): %s", rootfs, what, strerror(errno));
	close(fs);
	return rc;
}

static int mount_overlay(char *err, size_t errlen)
{
	static char data[16384];
	if (find_rootfs(err, errlen)) return -1;
	if (mkdir_p(rootfs, 0755) < 0 || mkdir_p(upper, 0755) < 0 || mkdir_p(work, 0755) < 0) {
		snprintf(err, errlen, "overlay: mkdir: %s", strerror(errno));
		return -1;
	}
	int n = snprintf(data, sizeof(data), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	if (n >= (int)sizeof(data) - 1) {
		snprintf(err, errlen, "overlay: too many lower layers");
		return -1;
	}
	/* mount(2) data is capped at one page: many layers need the fsconfig API, one layer per call.
	 * nodev: a device node that comes in an image layer (or that the container makes in its
	 * writable layer) opens nothing, whatever its mode and whatever the device rules allow;
	 * the container's /dev is a tmpfs of its own. */
	if (n >= 4000 ? mount_overlay_fsconfig(err, errlen) < 0
	              : mount("overlay", rootfs, "overlay", MS_NODEV, data) < 0) {
		if (!err[0]) snprintf(err, errlen, "overlay mount on %s: %s", rootfs, strerror(errno));
		return -1;
	}
	overlay_mounted = 1;
	return 0;
}

/* A private mount namespace whose /sys/fs/cgroup holds the v1 hierarchies only (crun 1.8 refuses
 * the hybrid layout). The host keeps its view; only the runtime run by this shim sees this one. */
static int hide_cgroup2(char *err, size_t errlen)
{
	char names[16][64];
	int fds[16], n = 0;
	host_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
		snprintf(err, errlen, "hide-cgroup2: private mount namespace: %s", strerror(errno));
		return -1;
	}
	/* Opened inside the new namespace: a bind source must belong to it. */
	char *mi = read_file("/proc/self/mountinfo", NULL);
	if (!mi) {
		snprintf(err, errlen, "read mountinfo: %s", strerror(errno));
		return -1;
	}
	for (char *line = strtok(mi, "\n"); line && n < 16; line = strtok(NULL, "\n")) {
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup ", 7) != 0) continue;
		char mp[512];
		if (sscanf(line, "%*s %*s %*s %*s %511s", mp) != 1 || strncmp(mp, "/sys/fs/cgroup/", 15) != 0) continue;
		snprintf(names[n], sizeof(names[n]), "%s", mp + 15);
		fds[n] = open(mp, O_PATH | O_CLOEXEC);
		if (fds[n] >= 0) n++;
	}
	free(mi);
	if (mount("cgv1", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0) {
		snprintf(err, errlen, "hide-cgroup2: tmpfs on /sys/fs/cgroup: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char dst[600], src[64];
		snprintf(dst, sizeof(dst), "/sys/fs/cgroup/%s", names[i]);
		snprintf(src, sizeof(src), "/proc/self/fd/%d", fds[i]);
		if (mkdir(dst, 0755) < 0 || mount(src, dst, NULL, MS_BIND, NULL) < 0) {
			snprintf(err, errlen, "hide-cgroup2: bind %s: %s", dst, strerror(errno));
			return -1;
		}
		close(fds[i]);
	}
	return 0;
}

static void drain_nonblock(int fd)
{
	char tmp[4096];
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (read(fd, tmp, sizeof(tmp)) > 0)
		;
	fcntl(fd, F_SETFL, 0);
}

static char oom_file[1400];
static int oom_v2;

static void find_oom_file(pid_t pid)
{
	char path[64], *text;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (!(text = read_file(path, NULL))) return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b) continue;
		if (strncmp(a + 1, "memory:", 7) == 0 || (strncmp(a + 1, "memory,", 7) == 0)) {
			*b = 0;
			snprintf(oom_file, sizeof(oom_file), "/sys/fs/cgroup/%s%s/memory.oom_control", a + 1, b + 1);
			oom_v2 = 0;
			break;
		}
		if (a[1] == ':' && !oom_file[0]) {
			snprintf(oom_file, sizeof(oom_file), "/sys/fs/cgroup%s/memory.events", b + 1);
			oom_v2 = 1;
		}
	}
	free(text);
	struct stat st;
	if (oom_file[0] && stat(oom_file, &st) < 0) oom_file[0] = 0;
}

static long long oom_kills(void)
{
	char buf[1024];
	if (!oom_file[0] || read_small(oom_file, buf, sizeof(buf)) < 0) return -1;
	char *k = strstr(buf, "oom_kill ");
	return k ? atoll(k + 9) : 0;
}

static void write_file_str(const char *name, const char *s)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", statedir, name);
	write_atomic(path, s, strlen(s));
}

/* Setup (mounts, JSON, spawning the runtime) faulted in much of this static binary's text, each
 * fault mapping up to 64 kB around it. None of it is needed to sit in poll(): let those clean,
 * file-backed pages go (the kernel re-reads them from the page cache if ever touched again).
 * Only mappings without private (COW) pages are dropped, so nothing written is ever lost. */
static void drop_clean_file_pages(void)
{
	static char buf[65536];
	ssize_t n = read_small("/proc/self/smaps", buf, sizeof(buf));
	if (n <= 0 || n >= (ssize_t)sizeof(buf) - 1) return;
	unsigned long start = 0, end = 0;
	int candidate = 0;
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next) *next++ = 0;
		char perms[8] = "";
		unsigned long a, b;
		char path[16] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %15s", &a, &b, perms, path) >= 3 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			start = a;
			end = b;
			/* file-backed, never writable: text and read-only data of this binary */
			candidate = path[0] == '/' && !strchr(perms, 'w');
		} else if (candidate && strncmp(line, "Anonymous:", 10) == 0) {
			if (strtoul(line + 10, NULL, 10) == 0) madvise((void *)start, end - start, MADV_DONTNEED);
			candidate = 0;
		}
		line = next;
	}
}

/* TSSWARM_SHIM_TIMING=1: phase times of the start path go to STATE-DIR/shim.timing. */
static char timing_buf[1024];
static size_t timing_len;
static struct timespec timing_t0;
static void tmark(const char *what)
{
	static int on = -1;
	if (on < 0) {
		on = getenv("TSSWARM_SHIM_TIMING") != NULL;
		clock_gettime(CLOCK_MONOTONIC, &timing_t0);
	}
	if (!on) return;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	timing_len += (size_t)snprintf(timing_buf + timing_len, sizeof(timing_buf) - timing_len, "%s %.3f\n", what,
	                               (double)(t.tv_sec - timing_t0.tv_sec) * 1e3 +
	                                       (double)(t.tv_nsec - timing_t0.tv_nsec) / 1e6);
	if (timing_len >= sizeof(timing_buf)) timing_len = sizeof(timing_buf) - 1;
}

static __attribute__((noreturn)) void shim_run(int status_fd)
{
	char err[1200] = "", path[4200], b[64];
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	pid_t init = 0;
	int nul = open("/dev/null", O_RDWR);
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	if (nul > 2) close(nul);
	/* Whatever else the caller let us inherit (a daemon's pipes, sockets) must not be held open
	 * for the container's lifetime. */
	if (status_fd > 3) syscall(SYS_close_range, 3U, (unsigned)status_fd - 1, 0U);
	syscall(SYS_close_range, (unsigned)status_fd + 1, ~0U, 0U);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	prctl(PR_SET_NAME, "tsswarm-shim", 0, 0, 0);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

	if (mkdir_p(statedir, 0711) < 0) {
		snprintf(err, sizeof(err), "state dir %s: %s", statedir, strerror(errno));
		goto fail;
	}
	snprintf(b, sizeof(b), "%d", (int)getpid());
	write_file_str("shim.pid", b);
	snprintf(path, sizeof(path), "%s/exit.json", statedir);
	unlink(path);
	log_fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (log_fd < 0) {
		snprintf(err, sizeof(err), "log %s: %s", logpath, strerror(errno));
		goto fail;
	}
	tmark("setup");
	if (lower && mount_overlay(err, sizeof(err))) goto fail;
	tmark("overlay");
	if (hide_cg2 && hide_cgroup2(err, sizeof(err))) goto fail;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(err, sizeof(err), "pipe: %s", strerror(errno));
		goto fail;
	}

	snprintf(path, sizeof(path), "%s/init.pid", statedir);
	unlink(path);
	const char *own_root = own_runtime_root();
	if (own_root) {
		char msg[1100];
		if (create_start_inproc(own_root, path, out[1], errp[1], msg, sizeof(msg)) != 0) {
			snprintf(err, sizeof(err), "%s", msg[0] ? msg : "create failed without an error message");
			goto fail;
		}
	} else {
		const char *create[] = { "create", "--bundle", bundle, "--pid-file", path, id, NULL };
		int rc = wait_for(spawn_runtime(create, out[1], errp[1]));
		tmark("create");
		if (rc != 0) {
			char msg[1024];
			last_line(errp[0], msg, sizeof(msg));
			snprintf(err, sizeof(err), "%s create failed: %s", rt_path, msg[0] ? msg : "no error message");
			goto fail;
		}
		/* Anything in the pipes now came from the runtime, not the container: keep it out of the log. */
		drain_nonblock(out[0]);
		drain_nonblock(errp[0]);
		const char *start[] = { "start", id, NULL };
		rc = wait_for(spawn_runtime(start, -1, errp[1]));
		if (rc != 0) {
			char msg[1024];
			last_line(errp[0], msg, sizeof(msg));
			snprintf(err, sizeof(err), "%s start failed: %s", rt_path, msg[0] ? msg : "no error message");
			const char *del[] = { "delete", "--force", id, NULL };
			wait_for(spawn_runtime(del, -1, -1));
			goto fail;
		}
	}
	tmark("start");
	if (timing_len) write_file_str("shim.timing", timing_buf);
	char startedAt[64];
	now_rfc3339(startedAt, sizeof(startedAt));
	close(out[1]);
	close(errp[1]);
	if (read_small(path, b, sizeof(b)) > 0) init = (pid_t)atoi(b);
	if (init <= 0) {
		snprintf(err, sizeof(err), "runtime did not write %s", path);
		goto fail;
	}
	find_oom_file(init);
	long long oom0 = oom_kills();
	write_all(status_fd, "OK\n", 3);
	close(status_fd);
	drop_clean_file_pages();

	static struct stream so, se;
	so.fd = out[0];
	so.name = "stdout";
	so.log_fd = log_fd;
	se.fd = errp[0];
	se.name = "stderr";
	se.log_fd = log_fd;
	int exited = 0, status = 0;
	char finishedAt[64] = "";
	long long oom1 = -1;
	struct timespec deadline = { 0, 0 };
	while (so.fd >= 0 || se.fd >= 0 || !exited) {
		struct pollfd pf[3] = { { so.fd, POLLIN, 0 }, { se.fd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		int timeout = -1;
		if (exited) {
			/* Processes that escaped the init (no pid namespace) may hold the pipes: do not wait forever. */
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
			if (ms <= 0) break;
			timeout = (int)ms;
		}
		int r = poll(pf, 3, timeout);
		if (r < 0 && errno != EINTR) break;
		if (pf[0].revents) stream_read(&so);
		if (pf[1].revents) stream_read(&se);
		if (pf[2].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			pid_t p;
			int st;
			while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
				if (p == init && !exited) {
					exited = 1;
					status = st;
					now_rfc3339(finishedAt, sizeof(finishedAt));
					oom1 = oom_kills(); /* before delete removes the cgroup */
					clock_gettime(CLOCK_MONOTONIC, &deadline);
					deadline.tv_sec += 2;
				}
			}
		}
	}
	stream_close(&so);
	stream_close(&se);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	char sig[16] = "null";
	if (WIFSIGNALED(status)) snprintf(sig, sizeof(sig), "%d", WTERMSIG(status));
	int oomk = oom1 > (oom0 < 0 ? 0 : oom0);
	char exitjson[512];
	snprintf(exitjson, sizeof(exitjson),
	         "{\"exitCode\":%d,\"signal\":%s,\"oomKilled\":%s,\"startedAt\":\"%s\",\"finishedAt\":\"%s\"}\n", code,
	         sig, oomk ? "true" : "false", startedAt, finishedAt);
	/* Clean up first, then publish exit.json: once it exists, the runtime state is gone and the
	 * overlay unmounted, so the daemon may restart the same id or remove the bundle at once. */
	delete_container();
	unmount_overlay();
	write_file_str("exit.json", exitjson);
	int st;
	while (waitpid(-1, &st, WNOHANG) > 0) continue;
	_exit(0);

fail:
	if (init > 0 || out[0] >= 0) {
		const char *del2[] = { "delete", "--force", id, NULL };
		if (out[0] >= 0) wait_for(spawn_runtime(del2, -1, -1));
	}
	unmount_overlay();
	snprintf(path, sizeof(path), "%s/shim.pid", statedir);
	unlink(path);
	write_all(status_fd, err, strlen(err));
	_exit(1);
}

static void abspath(const char *in, char *out, size_t cap, const char *what)
{
	if (in[0] == '/') {
		snprintf(out, cap, "%s", in);
		return;
	}
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd))) usage_fail("getcwd failed");
	if ((size_t)snprintf(out, cap, "%s/%s", cwd, in) >= cap) {
		dprintf(2, "tsswarm-shim: %s: path too long\n", what);
		exit(1);
	}
}

int shim_main(int argc, char **argv)
{
	const char *a_id = NULL, *a_bundle = NULL, *a_state = NULL, *a_log = NULL;
	/* Our runtime runs in a child of the shim and execs the container's process from it: the
	 * shim too runs from a copy of the binary no container can write (CVE-2019-5736). */
	if (exe_seal(argv)) {
		dprintf(2, "tsswarm-shim: %s\n", g_err);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		const char **dst = NULL;
		if (!strcmp(f, "--hide-cgroup2")) {
			hide_cg2 = 1;
			continue;
		}
		if (!strcmp(f, "--runtime"))
			dst = &rt_path;
		else if (!strcmp(f, "--id"))
			dst = &a_id;
		else if (!strcmp(f, "--bundle"))
			dst = &a_bundle;
		else if (!strcmp(f, "--state-dir"))
			dst = &a_state;
		else if (!strcmp(f, "--log"))
			dst = &a_log;
		else if (!strcmp(f, "--lower"))
			dst = &lower;
		else if (!strcmp(f, "--upper"))
			dst = &upper;
		else if (!strcmp(f, "--work"))
			dst = &work;
		else if (!strcmp(f, "--runtime-arg")) {
			if (i + 1 >= argc) usage_fail("--runtime-arg needs a value");
			if (n_rt_args >= MAX_RT_ARGS) usage_fail("too many --runtime-arg");
			rt_args[n_rt_args++] = argv[++i];
			continue;
		} else {
			dprintf(2, "tsswarm-shim: unknown flag %s\n", f);
			return 1;
		}
		if (i + 1 >= argc) {
			dprintf(2, "tsswarm-shim: %s needs a value\n", f);
			return 1;
		}
		*dst = argv[++i];
	}
	if (!rt_path || !a_id || !a_bundle || !a_state || !a_log)
		usage_fail(
			"usage: tsswarm-shim --runtime PATH [--runtime-arg ARG]... --id ID --bundle DIR --state-dir DIR --log FILE "
			"[--lower D1:D2 --upper DIR --work DIR] [--hide-cgroup2]");
	if (lower && (!upper || !work)) usage_fail("--lower needs --upper and --work");
	if (!valid_id(a_id)) usage_fail("invalid --id (letters, digits, _ . -)");
	if (access(rt_path, X_OK) < 0) {
		dprintf(2, "tsswarm-shim: runtime %s: %s\n", rt_path, strerror(errno));
		return 1;
	}
	snprintf(id, sizeof(id), "%s", a_id);
	if (!realpath(a_bundle, bundle)) {
		dprintf(2, "tsswarm-shim: bundle %s: %s\n", a_bundle, strerror(errno));
		return 1;
	}
	abspath(a_state, statedir, sizeof(statedir), "--state-dir");
	abspath(a_log, logpath, sizeof(logpath), "--log");
	static char rtabs[4096], up[4096], wk[4096];
	abspath(rt_path, rtabs, sizeof(rtabs), "--runtime");
	rt_path = rtabs;
	if (upper) {
		abspath(upper, up, sizeof(up), "--upper");
		upper = up;
	}
	if (work) {
		abspath(work, wk, sizeof(wk), "--work");
		work = wk;
	}

	/* The shim works from "/": path-valued runtime flags given relative to the caller's cwd must be
	 * made absolute first. */
	static char absargs[MAX_RT_ARGS][4096];
	for (int i = 0; i < n_rt_args; i++) {
		const char *a = rt_args[i];
		if ((!strcmp(a, "--root") || !strcmp(a, "--log")) && i + 1 < n_rt_args && rt_args[i + 1][0] != '/') {
			abspath(rt_args[i + 1], absargs[i + 1], sizeof(absargs[0]), a);
			rt_args[i + 1] = absargs[i + 1];
			i++;
		}
	}
	int sp[2];
	if (pipe2(sp, O_CLOEXEC) < 0) usage_fail("pipe failed");
	tmark("begin");
	pid_t mid = fork();
	if (mid < 0) usage_fail("fork failed");
	if (mid == 0) {
		close(sp[0]);
		/* Double fork + setsid: the shim is nobody's child but init's (or the nearest subreaper's),
		 * has no controlling terminal, and survives its caller. */
		setsid();
		pid_t shim = fork();
		if (shim < 0) _exit(1);
		if (shim > 0) _exit(0);
		if (chdir("/") < 0) _exit(1);
		shim_run(sp[1]);
	}
	close(sp[1]);
	waitpid(mid, NULL, 0);
	char buf[1400];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(buf) - 1 &&
	       ((r = read(sp[0], buf + n, sizeof(buf) - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0) n += (size_t)r;
	buf[n] = 0;
	if (n >= 2 && strncmp(buf, "OK", 2) == 0) return 0;
	dprintf(2, "tsswarm-shim: %s: %s\n", id, n ? buf : "shim exited during start");
	return 1;
}
