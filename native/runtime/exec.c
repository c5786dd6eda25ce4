/* `exec`: a new process inside a running container's namespaces and cgroups. */
#include "cgroup.h"
#include "child.h"
#include "container.h"
#include "process.h"
#include "state.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int load_exec_process(const struct exec_opts *o, const struct cstate *st, struct process_spec *p,
                             struct seccomp_prog **sc)
{
	char path[4200], perr[200];
	size_t len;
	/* The container's own config gives the defaults and its seccomp filter, which binds every
	 * process in the container, exec'd ones included (as with runc). */
	static struct spec s;
	state_path(o->root, o->id, "config.json", path, sizeof(path));
	char *text = read_file(path, &len);
	if (!text) return seterr("read %s: %s", path, strerror(errno));
	if (spec_parse_text(text, len, st->bundle, &s)) return -1;
	*sc = s.seccomp;
	if (o->process_file) {
		char *ptext = read_file(o->process_file, &len);
		if (!ptext) return seterr("process file %s: %s", o->process_file, strerror(errno));
		struct jval *v = json_parse(ptext, len, perr, sizeof(perr));
		if (!v) return seterr("process file %s: invalid JSON: %s", o->process_file, perr);
		if (spec_parse_process(v, p, "process")) return adderr("process file %s: ", o->process_file);
	} else {
		*p = s.proc;
		if (!o->nargs) return seterr("exec: no command given (pass CMD... or --process FILE)");
		p->args = o->args;
		p->nargs = o->nargs;
	}
	if (o->nenv) {
		char **env = calloc((size_t)(p->nenv + o->nenv + 1), sizeof(char *));
		memcpy(env, p->env, (size_t)p->nenv * sizeof(char *));
		memcpy(env + p->nenv, o->env, (size_t)o->nenv * sizeof(char *));
		p->env = env;
		p->nenv += o->nenv;
	}
	if (o->cwd) p->cwd = (char *)o->cwd;
	if (o->has_user) {
		p->uid = o->uid;
		p->gid = o->gid;
	}
	p->terminal = 0;
	return 0;
}

int container_exec(const struct exec_opts *o)
{
	struct cstate st;
	struct process_spec p;
	if (state_read(o->root, o->id, &st)) return -1;
	const char *status = state_status(o->root, &st);
	if (strcmp(status, "running") != 0) return seterr("cannot exec in a %s container", status);
	struct seccomp_prog *sc = NULL;
	if (load_exec_process(o, &st, &p, &sc)) return -1;
	struct cgroup cg;
	if (cg_init(&cg, st.cgpath, st.cpuset)) return -1;

	/* Namespaces the container does not share with us; opened before any setns changes /proc. */
	static const struct {
		const char *name;
		int flag;
	} nss[] = {
		{ "user", CLONE_NEWUSER }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
		{ "net", CLONE_NEWNET },   { "pid", CLONE_NEWPID }, { "cgroup", CLONE_NEWCGROUP },
		{ "mnt", CLONE_NEWNS },
	};
	int fds[7], n = 0, flags[7], pidfd = -1;
	for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++) {
		char a[64], b[64];
		struct stat sa, sb;
		snprintf(a, sizeof(a), "/proc/%d/ns/%s", (int)st.pid, nss[i].name);
		snprintf(b, sizeof(b), "/proc/self/ns/%s", nss[i].name);
		if (stat(a, &sa) < 0) return seterr("container %s: %s: %s", o->id, a, strerror(errno));
		if (stat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev) continue;
		int fd = open(a, O_RDONLY | O_CLOEXEC);
		if (fd < 0) return seterr("open %s: %s", a, strerror(errno));
		if (nss[i].flag == CLONE_NEWPID) {
			pidfd = fd;
			continue;
		}
		fds[n] = fd;
		flags[n++] = nss[i].flag;
	}
	if (pidfd >= 0 && setns(pidfd, CLONE_NEWPID) < 0) return seterr("join pid namespace: %s", strerror(errno));
	int errp[2];
	if (pipe2(errp, O_CLOEXEC) < 0) return seterr("pipe: %s", strerror(errno));
	fflush(NULL);
	/* Born in the container's cgroup2 leaf (v2, or the unified tree of a hybrid host) when there is
	 * one: a cgroup.procs write would wait for an RCU grace period on every exec. */
	int born_in = 1;
	pid_t pid = cg_clone_into(&cg, 0);
	if (pid < 0) {
		born_in = 0;
		pid = fork();
	}
	if (pid < 0) return seterr("fork: %s", strerror(errno));
	if (pid == 0) {
		close(errp[0]);
		/* Visible in the container's pid namespace until it execs: not dumpable, so no process
		 * there can open our /proc/PID/exe, fds or memory (CVE-2019-5736). */
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		char path[4096];
		/* Join the cgroups while the host's /sys/fs/cgroup is still our view. */
		if ((cg.v2 && born_in ? 0 : cg_enter_self(&cg)) == 0 && (born_in || cg_enter_unified(&cg) == 0)) {
			int i;
			for (i = 0; i < n; i++)
				if (setns(fds[i], flags[i]) < 0) {
					seterr("join namespace: %s", strerror(errno));
					break;
				}
			if (i == n) {
				syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
				if ((!sc || p.no_new_privs || seccomp_load(sc) == 0) &&
				    process_prepare(&p, path, sizeof(path)) == 0 &&
				    (!sc || !p.no_new_privs || seccomp_load(sc) == 0))
					process_exec(&p, path);
			}
		}
		write_all(errp[1], g_err, strlen(g_err));
		_exit(127);
	}
	close(errp[1]);
	char ebuf[1024];
	ssize_t r;
	while ((r = read(errp[0], ebuf, sizeof(ebuf) - 1)) < 0 && errno == EINTR) continue;
	close(errp[0]);
	if (r > 0) {
		ebuf[r] = 0;
		reap(pid, NULL);
		return seterr("exec in %s: %s", o->id, ebuf);
	}
	if (o->pidfile) {
		char b[24];
		int l = snprintf(b, sizeof(b), "%d", (int)pid);
		if (write_atomic(o->pidfile, b, (size_t)l) < 0)
			return seterr("pid file %s: %s", o->pidfile, strerror(errno));
	}
	if (o->detach) return 0;
	install_forwarding(pid);
	int wst = 0;
	reap(pid, &wst);
	return exit_code(wst);
}
