#include "cgroup.h"
#include "devices.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

#define CGROOT "/sys/fs/cgroup"

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int cg_is_v2_host(void)
{
	struct statfs sf;
	return statfs(CGROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

int cg_init(struct cgroup *cg, const char *path, int want_cpuset)
{
	memset(cg, 0, sizeof(*cg));
	cg->mem = cg->cpu = cg->pids = cg->freezer = -1;
	if (!path || !*path) return seterr("cgroup: empty cgroupsPath");
	snprintf(cg->path, sizeof(cg->path), "%s%s", path[0] == '/' ? "" : "/", path);
	cg->v2 = cg_is_v2_host();
	if (cg->v2) {
		cg->n = 1;
		snprintf(cg->dir[0], sizeof(cg->dir[0]), CGROOT "%s", cg->path);
		cg->mem = cg->cpu = cg->pids = cg->freezer = 0;
		return 0;
	}
	/* Only the hierarchies a container needs: every extra one is a mkdir, a write and an rmdir. */
	static const char *ctrls[] = { "memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio", "cpuset" };
	dev_t seen[CG_MAX];
	for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
		if (strcmp(ctrls[i], "cpuset") == 0 && !want_cpuset) continue;
		char root[64];
		struct stat st;
		struct statfs sf;
		snprintf(root, sizeof(root), CGROOT "/%s", ctrls[i]);
		if (stat(root, &st) < 0 || statfs(root, &sf) < 0 || sf.f_type != CGROUP_SUPER_MAGIC) continue;
		int dup = 0;
		for (int k = 0; k < cg->n; k++)
			if (seen[k] == st.st_dev) dup = 1;
		if (dup) continue;
		seen[cg->n] = st.st_dev;
		cg->name[cg->n] = ctrls[i];
		snprintf(cg->dir[cg->n], sizeof(cg->dir[0]), "%s%s", root, cg->path);
		if (!strcmp(ctrls[i], "memory")) cg->mem = cg->n;
		if (!strcmp(ctrls[i], "cpu")) cg->cpu = cg->n;
		if (!strcmp(ctrls[i], "pids")) cg->pids = cg->n;
		if (!strcmp(ctrls[i], "freezer")) cg->freezer = cg->n;
		cg->n++;
	}
	if (!cg->n) return seterr("cgroup: no cgroup v1 hierarchy and no cgroup2 found under " CGROOT);
	/* TSSWARM_RUNTIME_DEVICE_CGROUP=v1|bpf keeps only one of the two device controls of a hybrid
	 * host (for tests of each); by default both hold. */
	const char *mode = getenv("TSSWARM_RUNTIME_DEVICE_CGROUP");
	struct statfs sf;
	cg->v1_devices = !mode || strcmp(mode, "bpf") != 0;
	if ((!mode || strcmp(mode, "v1") != 0) && statfs(CGROOT "/unified", &sf) == 0 &&
	    sf.f_type == CGROUP2_SUPER_MAGIC) {
		cg->has_unified = 1;
		snprintf(cg->unified, sizeof(cg->unified), CGROOT "/unified%s", cg->path);
	}
	return 0;
}

static int cg_write(const char *dir, const char *file, const char *val)
{
	char p[1400];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	if (write_str(p, val) < 0) return seterr("cgroup: write %s to %s: %s", val, p, strerror(errno));
	return 0;
}

static int cg_writell(const char *dir, const char *file, long long v)
{
	char b[32];
	snprintf(b, sizeof(b), "%lld", v);
	return cg_write(dir, file, b);
}

/* cpuset children start with empty cpus/mems and refuse tasks: copy them down from the parent. */
static int cpuset_fill(const char *dir)
{
	char parent[1200], p[1300], buf[256];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (!slash) return 0;
	*slash = 0;
	for (int i = 0; i < 2; i++) {
		const char *f = i ? "cpuset.mems" : "cpuset.cpus";
		snprintf(p, sizeof(p), "%s/%s", dir, f);
		if (read_small(p, buf, sizeof(buf)) < 0) return seterr("cgroup: read %s: %s", p, strerror(errno));
		if (buf[0] && buf[0] != '\n') continue;
		snprintf(p, sizeof(p), "%s/%s", parent, f);
		if (read_small(p, buf, sizeof(buf)) < 0) return seterr("cgroup: read %s: %s", p, strerror(errno));
		if (cg_write(dir, f, buf)) return -1;
	}
	return 0;
}

static int mkdir_cg(const char *dir, int cpuset)
{
	char buf[1200];
	size_t n = strlen(dir);
	memcpy(buf, dir, n + 1);
	/* Walk from /sys/fs/cgroup/<ctrl> down so intermediate cpuset dirs get cpus/mems too. */
	for (char *p = buf + strlen(CGROOT) + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, 0755) == 0) {
				if (cpuset && cpuset_fill(buf)) return -1;
			} else if (errno != EEXIST) {
				return seterr("cgroup: mkdir %s: %s", buf, strerror(errno));
			}
			*p = c;
			if (!c) break;
		}
	}
	return 0;
}

static int v2_enable(struct cgroup *cg, const struct resources *res)
{
	char ctl[64] = "";
	if (res->mem_limit > 0 || res->mem_swap > 0 || res->mem_reservation > 0) strcat(ctl, " +memory");
	if (res->cpu_shares || res->cpu_quota > 0 || res->cpu_period) strcat(ctl, " +cpu");
	if (res->pids_limit > 0) strcat(ctl, " +pids");
	if (res->cpus || res->mems) strcat(ctl, " +cpuset");
	if (!ctl[0]) return 0;
	char avail[512];
	if (read_small(CGROOT "/cgroup.controllers", avail, sizeof(avail)) < 0)
		return seterr("cgroup: read " CGROOT "/cgroup.controllers: %s", strerror(errno));
	char *save, *tok, want[64];
	snprintf(want, sizeof(want), "%s", ctl);
	for (tok = strtok_r(want, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (!strstr(avail, tok + 1))
			return seterr("cgroup: the %s controller is not available in cgroup2 (controllers: %.100s)",
			              tok + 1, avail[0] ? avail : "none");
	/* Controllers must be enabled in every ancestor's subtree_control, top down (not in the leaf). */
	char buf[1200];
	snprintf(buf, sizeof(buf), "%s", cg->dir[0]);
	for (char *p = buf + strlen(CGROOT); p && *p; p = strchr(p + 1, '/')) {
		*p = 0;
		char sc[1300];
		snprintf(sc, sizeof(sc), "%s/cgroup.subtree_control", buf);
		*p = '/';
		if (write_str(sc, ctl + 1) < 0) return seterr("cgroup: enable%s in %s: %s", ctl, sc, strerror(errno));
	}
	return 0;
}

int cg_create(struct cgroup *cg, const struct resources *res)
{
	if (cg->v2) {
		const char *d = cg->dir[0];
		if (mkdir_cg(d, 0)) return -1;
		if (v2_enable(cg, res)) goto fail;
		if (res->mem_limit > 0 && cg_writell(d, "memory.max", res->mem_limit)) goto fail;
		if (res->mem_reservation > 0 && cg_writell(d, "memory.low", res->mem_reservation)) goto fail;
		if (res->mem_limit > 0) {
			/* v2 has a separate swap limit; OCI swap is memory+swap. Default: no swap, like memsw=limit. */
			char p[1300], sw[32];
			if (res->has_swap && res->mem_swap == -1)
				strcpy(sw, "max");
			else
				snprintf(sw, sizeof(sw), "%lld",
				         res->mem_swap > 0 ? res->mem_swap - res->mem_limit : 0);
			snprintf(p, sizeof(p), "%s/memory.swap.max", d);
			if (access(p, F_OK) == 0 && cg_write(d, "memory.swap.max", sw)) goto fail;
		}
		if (res->cpu_shares) {
			long long w = 1 + ((long long)(res->cpu_shares - 2) * 9999) / 262142;
			if (cg_writell(d, "cpu.weight", w)) goto fail;
		}
		if (res->cpu_quota > 0 || res->cpu_period) {
			char b[64];
			unsigned long long period = res->cpu_period ? res->cpu_period : 100000;
			if (res->cpu_quota > 0)
				snprintf(b, sizeof(b), "%lld %llu", res->cpu_quota, period);
			else
				snprintf(b, sizeof(b), "max %llu", period);
			if (cg_write(d, "cpu.max", b)) goto fail;
		}
		if (res->pids_limit > 0 && cg_writell(d, "pids.max", res->pids_limit)) goto fail;
		if (res->cpus && *res->cpus && cg_write(d, "cpuset.cpus", res->cpus)) goto fail;
		if (res->mems && *res->mems && cg_write(d, "cpuset.mems", res->mems)) goto fail;
		if (res->has_devices && dev_bpf_attach(d, res)) goto fail;
		return 0;
	}
	int need_mem = res->mem_limit > 0 || res->mem_swap > 0 || res->mem_reservation > 0 || res->has_swappiness;
	int need_cpu = res->cpu_shares || res->cpu_quota > 0 || res->cpu_period;
	if (need_mem && cg->mem < 0)
		return seterr("cgroup: memory limit requested but the memory controller is not mounted");
	if (need_cpu && cg->cpu < 0) return seterr("cgroup: cpu limit requested but the cpu controller is not mounted");
	if (res->pids_limit > 0 && cg->pids < 0)
		return seterr("cgroup: pids limit requested but the pids controller is not mounted");
	for (int i = 0; i < cg->n; i++) {
		const char *d = cg->dir[i], *name = cg->name[i];
		if (mkdir_cg(d, strcmp(name, "cpuset") == 0)) goto fail;
		if (i == cg->mem) {
			if (res->mem_limit > 0) {
				if (cg_writell(d, "memory.limit_in_bytes", res->mem_limit)) goto fail;
				char p[1300];
				snprintf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", d);
				/* Unset swap means no swap (memsw = limit); an explicit -1 means unlimited. */
				long long sw = res->has_swap && res->mem_swap == -1 ? -1
				               : res->mem_swap > 0                  ? res->mem_swap
				                                                    : res->mem_limit;
				if (access(p, F_OK) == 0 && cg_writell(d, "memory.memsw.limit_in_bytes", sw)) goto fail;
			}
			if (res->mem_reservation > 0 &&
			    cg_writell(d, "memory.soft_limit_in_bytes", res->mem_reservation))
				goto fail;
			if (res->has_swappiness && cg_writell(d, "memory.swappiness", (long long)res->swappiness))
				goto fail;
		} else if (i == cg->cpu) {
			if (res->cpu_shares && cg_writell(d, "cpu.shares", (long long)res->cpu_shares)) goto fail;
			if (res->cpu_period && cg_writell(d, "cpu.cfs_period_us", (long long)res->cpu_period))
				goto fail;
			if (res->cpu_quota && cg_writell(d, "cpu.cfs_quota_us", res->cpu_quota)) goto fail;
		} else if (i == cg->pids) {
			if (res->pids_limit > 0 && cg_writell(d, "pids.max", res->pids_limit)) goto fail;
		} else if (!strcmp(name, "cpuset")) {
			if (res->cpus && *res->cpus && cg_write(d, "cpuset.cpus", res->cpus)) goto fail;
			if (res->mems && *res->mems && cg_write(d, "cpuset.mems", res->mems)) goto fail;
		} else if (!strcmp(name, "devices") && res->has_devices && cg->v1_devices) {
			/* The spec's rules, then the devices every container needs (as runc and crun add). */
			for (int k = 0; k < res->ndevs + dev_ndefaults; k++) {
				const struct dev_rule *r =
					k < res->ndevs ? &res->devs[k] : &dev_defaults[k - res->ndevs];
				char line[96], maj[24], min[24];
				if (r->type == 'a')
					snprintf(line, sizeof(line), "a");
				else {
					if (r->major < 0)
						strcpy(maj, "*");
					else
						snprintf(maj, sizeof(maj), "%lld", r->major);
					if (r->minor < 0)
						strcpy(min, "*");
					else
						snprintf(min, sizeof(min), "%lld", r->minor);
					snprintf(line, sizeof(line), "%c %s:%s %s", r->type, maj, min, r->access);
				}
				if (cg_write(d, r->allow ? "devices.allow" : "devices.deny", line)) goto fail;
			}
		}
	}
	/* Hybrid host: the device program in the container's cgroup of the unified tree too (the
	 * init is born there, see cg_open_leaf); it needs no controller. */
	if (cg->has_unified && res->has_devices) {
		if (mkdir_cg(cg->unified, 0) || dev_bpf_attach(cg->unified, res)) goto fail;
	} else {
		cg->has_unified = 0;
	}
	return 0;
fail:;
	char keep[sizeof(g_err)];
	memcpy(keep, g_err, sizeof(keep));
	cg_destroy(cg);
	memcpy(g_err, keep, sizeof(keep));
	return -1;
}

int cg_attach(struct cgroup *cg, pid_t pid)
{
	char b[24];
	snprintf(b, sizeof(b), "%d", (int)pid);
	for (int i = 0; i < cg->n; i++)
		if (cg_write(cg->dir[i], "cgroup.procs", b)) return -1;
	return 0;
}

int cg_is_frozen(struct cgroup *cg)
{
	char p[1300], buf[256];
	if (cg->freezer < 0) return -1;
	if (cg->v2) {
		snprintf(p, sizeof(p), "%s/cgroup.events", cg->dir[0]);
		if (read_small(p, buf, sizeof(buf)) < 0) return -1;
		return strstr(buf, "frozen 1") != NULL;
	}
	snprintf(p, sizeof(p), "%s/freezer.state", cg->dir[cg->freezer]);
	if (read_small(p, buf, sizeof(buf)) < 0) return -1;
	return strncmp(buf, "FROZEN", 6) == 0;
}

int cg_freeze(struct cgroup *cg, int freeze)
{
	if (cg->freezer < 0) return seterr("cgroup: no freezer hierarchy is mounted");
	const char *d = cg->dir[cg->freezer];
	/* Freezing is asynchronous (FREEZING -> FROZEN): poll, re-requesting now and then, up to ~5 s. */
	for (int tries = 0; tries < 5000; tries++) {
		if (tries % 100 == 0) {
			if (cg->v2 ? cg_write(d, "cgroup.freeze", freeze ? "1" : "0")
			           : cg_write(d, "freezer.state", freeze ? "FROZEN" : "THAWED"))
				return -1;
		}
		int f = cg_is_frozen(cg);
		if (f < 0) return seterr("cgroup: read freezer state of %s: %s", d, strerror(errno));
		if (f == freeze) return 0;
		struct timespec ts = { 0, tries < 20 ? 100000 : 1000000 };
		nanosleep(&ts, NULL);
	}
	if (freeze) /* do not leave a half-frozen container behind */
		cg->v2 ? cg_write(d, "cgroup.freeze", "0") : cg_write(d, "freezer.state", "THAWED");
	return seterr("cgroup: %s did not become %s within 5 s", d, freeze ? "FROZEN" : "THAWED");
}

int cg_destroy(struct cgroup *cg)
{
	int rc = 0;
	for (int i = 0; i < cg->n + cg->has_unified; i++) {
		const char *d = i < cg->n ? cg->dir[i] : cg->unified;
		/* Exiting tasks leave the cgroup asynchronously: EBUSY for a moment is normal. */
		for (int tries = 0;; tries++) {
			if (rmdir(d) == 0 || errno == ENOENT) break;
			if (errno != EBUSY || tries >= 500) {
				rc = seterr("cgroup: rmdir %s: %s", d, strerror(errno));
				break;
			}
			msleep(tries < 10 ? 0 : 2);
			if (tries < 10) sched_yield();
		}
	}
	return rc;
}

int cg_pids(struct cgroup *cg, pid_t *out, int max)
{
	int idx = cg->pids >= 0 ? cg->pids : (cg->freezer >= 0 ? cg->freezer : 0);
	char p[1300];
	snprintf(p, sizeof(p), "%s/cgroup.procs", cg->dir[idx]);
	char *text = read_file(p, NULL);
	if (!text) return seterr("cgroup: read %s: %s", p, strerror(errno));
	int n = 0;
	for (char *s = text; *s && n < max;) {
		char *e;
		long v = strtol(s, &e, 10);
		if (e == s) break;
		out[n++] = (pid_t)v;
		s = e;
		while (*s == '\n') s++;
	}
	free(text);
	return n;
}

long long cg_oom_kills(struct cgroup *cg)
{
	if (cg->mem < 0) return -1;
	char p[1300], buf[1024];
	snprintf(p, sizeof(p), "%s/%s", cg->dir[cg->mem], cg->v2 ? "memory.events" : "memory.oom_control");
	if (read_small(p, buf, sizeof(buf)) < 0) return -1;
	char *k = strstr(buf, "oom_kill ");
	return k ? atoll(k + 9) : 0;
}

/* Moving a process with a cgroup.procs write takes the global cgroup_threadgroup_rwsem for writing;
 * after a quiet spell that waits for an RCU grace period (6-16 ms here, and it holds cgroup_mutex
 * meanwhile). A thread that moves *itself* by writing "0" to v1 "tasks" skips that lock (the
 * kernel's own fast path: current cannot exit or exec under us) and costs ~0.1 ms. For a
 * single-threaded process, moving its only thread is moving the process. */
int cg_enter_self(struct cgroup *cg)
{
	for (int i = 0; i < cg->n; i++)
		if (cg_write(cg->dir[i], cg->v2 ? "cgroup.procs" : "tasks", "0")) return -1;
	return 0;
}

int cg_enter_unified(struct cgroup *cg)
{
	if (!cg->has_unified || access(cg->unified, F_OK) < 0) return 0;
	return cg_write(cg->unified, "cgroup.procs", "0");
}

int cg_open_leaf(struct cgroup *cg)
{
	if (!cg->v2 && !cg->has_unified) return -1;
	return open(cg->v2 ? cg->dir[0] : cg->unified, O_DIRECTORY | O_PATH | O_CLOEXEC);
}

/* Our own copy: <linux/sched.h> clashes with glibc's <sched.h>. */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
		cgroup;
};
#define CLONE_INTO_CGROUP_FLAG 0x200000000ULL
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

pid_t cg_clone_into(struct cgroup *cg, unsigned long flags)
{
	int leaf = cg_open_leaf(cg);
	if (leaf < 0) return -1;
	struct clone3_args ca = { .flags = (uint64_t)flags | CLONE_INTO_CGROUP_FLAG,
		                  .exit_signal = SIGCHLD,
		                  .cgroup = (uint64_t)leaf };
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	int e = errno;
	if (pid != 0) close(leaf);
	errno = e;
	return pid;
}
