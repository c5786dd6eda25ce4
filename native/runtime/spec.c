#include "spec.h"
#include "util.h"
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* Error helpers that name the offending JSON path, so a bad field produces one useful line. */
#define BAD(path, fmt, ...) seterr("config.json: %s: " fmt, path, ##__VA_ARGS__)

static const char *cap_names[] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

int cap_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (strcasecmp(name, cap_names[i]) == 0 || strcasecmp(name, cap_names[i] + 4) == 0) return (int)i;
	return -1;
}

static const struct {
	const char *name;
	int sig;
} sigs[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },       { "QUIT", SIGQUIT }, { "ILL", SIGILL },     { "TRAP", SIGTRAP },
	{ "ABRT", SIGABRT }, { "IOT", SIGIOT },       { "BUS", SIGBUS },   { "FPE", SIGFPE },     { "KILL", SIGKILL },
	{ "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },     { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE },   { "ALRM", SIGALRM },
	{ "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT },   { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU }, { "URG", SIGURG },     { "XCPU", SIGXCPU },
	{ "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "POLL", SIGPOLL }, { "PWR", SIGPWR },       { "SYS", SIGSYS },
};

int signal_from_name(const char *name)
{
	if (!name || !*name) return -1;
	if (name[0] >= '0' && name[0] <= '9') {
		char *e;
		long v = strtol(name, &e, 10);
		if (*e || v <= 0 || v > SIGRTMAX) return -1;
		return (int)v;
	}
	const char *n = name;
	if (strncasecmp(n, "SIG", 3) == 0) n += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcasecmp(n, sigs[i].name) == 0) return sigs[i].sig;
	if (strncasecmp(n, "RTMIN", 5) == 0) {
		int off = n[5] == '+' ? atoi(n + 6) : 0;
		if (SIGRTMIN + off <= SIGRTMAX) return SIGRTMIN + off;
	}
	return -1;
}

static const struct {
	const char *name;
	int res;
} rlims[] = {
	{ "RLIMIT_CPU", RLIMIT_CPU },           { "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "RLIMIT_DATA", RLIMIT_DATA },         { "RLIMIT_STACK", RLIMIT_STACK },
	{ "RLIMIT_CORE", RLIMIT_CORE },         { "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },       { "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },   { "RLIMIT_AS", RLIMIT_AS },
	{ "RLIMIT_LOCKS", RLIMIT_LOCKS },       { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },     { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

static int want(const struct jval *v, enum jtype t, const char *path)
{
	if (!v) return 0;
	if (v->t != t)
		return BAD(path, "expected %s %s, got %s", t == J_ARR || t == J_OBJ ? "an" : "a", json_type_name(t),
		           json_type_name(v->t));
	return 1;
}

static int get_str(const struct jval *obj, const char *key, const char *path, char **out, int required)
{
	struct jval *v = json_get(obj, key);
	if (!v) {
		if (required) return BAD(path, "missing (expected a string)");
		return 0;
	}
	if (v->t != J_STR) return BAD(path, "expected a string, got %s", json_type_name(v->t));
	*out = v->s;
	return 1;
}

static int get_uint(const struct jval *obj, const char *key, const char *path, unsigned long long max,
                    unsigned long long *out)
{
	struct jval *v = json_get(obj, key);
	if (!v) return 0;
	if (v->t != J_NUM || !v->is_int || v->i < 0 || (unsigned long long)v->i > max)
		return BAD(path, "expected an integer between 0 and %llu", max);
	*out = (unsigned long long)v->i;
	return 1;
}

static int get_int(const struct jval *obj, const char *key, const char *path, long long *out)
{
	struct jval *v = json_get(obj, key);
	if (!v) return 0;
	if (v->t != J_NUM || !v->is_int) return BAD(path, "expected an integer");
	*out = v->i;
	return 1;
}

static int get_bool(const struct jval *obj, const char *key, const char *path, int *out)
{
	struct jval *v = json_get(obj, key);
	if (!v) return 0;
	if (v->t != J_BOOL) return BAD(path, "expected a boolean, got %s", json_type_name(v->t));
	*out = v->b;
	return 1;
}

/* Array of strings -> NULL-terminated vector. */
static int str_array(const struct jval *v, const char *path, char ***out, int *n, int nonempty)
{
	if (!v) {
		if (nonempty) return BAD(path, "expected a non-empty array");
		*out = calloc(1, sizeof(char *));
		*n = 0;
		return 0;
	}
	if (v->t != J_ARR)
		return BAD(path, "expected %sarray of strings, got %s", nonempty ? "a non-empty " : "an ",
		           json_type_name(v->t));
	if (nonempty && v->len == 0) return BAD(path, "expected a non-empty array");
	char **a = calloc(v->len + 1, sizeof(char *));
	int i = 0;
	for (struct jval *c = v->child; c; c = c->next, i++) {
		if (c->t != J_STR) {
			free(a);
			return BAD(path, "element %d: expected a string, got %s", i, json_type_name(c->t));
		}
		a[i] = c->s;
	}
	*out = a;
	*n = i;
	return 0;
}

int spec_parse_process(const struct jval *p, struct process_spec *out, const char *where)
{
	char path[128];
	memset(out, 0, sizeof(*out));
	out->cwd = "/";
	if (!p) return seterr("config.json: %s: missing (expected an object)", where);
	if (p->t != J_OBJ) return seterr("config.json: %s: expected an object, got %s", where, json_type_name(p->t));
	snprintf(path, sizeof(path), "%s.args", where);
	if (str_array(json_get(p, "args"), path, &out->args, &out->nargs, 1)) return -1;
	if (out->args[0][0] == 0) return BAD(path, "element 0: expected a non-empty string");
	snprintf(path, sizeof(path), "%s.env", where);
	if (str_array(json_get(p, "env"), path, &out->env, &out->nenv, 0)) return -1;
	for (int i = 0; i < out->nenv; i++)
		if (!strchr(out->env[i], '='))
			return BAD(path, "element %d: expected KEY=VALUE, got \"%.80s\"", i, out->env[i]);
	snprintf(path, sizeof(path), "%s.cwd", where);
	if (get_str(p, "cwd", path, &out->cwd, 0) < 0) return -1;
	if (out->cwd[0] != '/') return BAD(path, "expected an absolute path, got \"%.80s\"", out->cwd);
	snprintf(path, sizeof(path), "%s.terminal", where);
	if (get_bool(p, "terminal", path, &out->terminal) < 0) return -1;
	snprintf(path, sizeof(path), "%s.noNewPrivileges", where);
	if (get_bool(p, "noNewPrivileges", path, &out->no_new_privs) < 0) return -1;
	long long oom = 0;
	snprintf(path, sizeof(path), "%s.oomScoreAdj", where);
	int r = get_int(p, "oomScoreAdj", path, &oom);
	if (r < 0) return -1;
	if (r) {
		if (oom < -1000 || oom > 1000) return BAD(path, "expected an integer between -1000 and 1000");
		out->has_oom = 1;
		out->oom_score_adj = (int)oom;
	}
	struct jval *user = json_get(p, "user");
	snprintf(path, sizeof(path), "%s.user", where);
	if ((r = want(user, J_OBJ, path)) < 0) return -1;
	if (r) {
		unsigned long long v;
		snprintf(path, sizeof(path), "%s.user.uid", where);
		if ((r = get_uint(user, "uid", path, UINT_MAX - 1, &v)) < 0) return -1;
		if (r) out->uid = (unsigned)v;
		snprintf(path, sizeof(path), "%s.user.gid", where);
		if ((r = get_uint(user, "gid", path, UINT_MAX - 1, &v)) < 0) return -1;
		if (r) out->gid = (unsigned)v;
		struct jval *ag = json_get(user, "additionalGids");
		snprintf(path, sizeof(path), "%s.user.additionalGids", where);
		if ((r = want(ag, J_ARR, path)) < 0) return -1;
		if (r) {
			out->agids = calloc(ag->len + 1, sizeof(unsigned));
			for (struct jval *c = ag->child; c; c = c->next) {
				if (c->t != J_NUM || !c->is_int || c->i < 0 || c->i >= UINT_MAX)
					return BAD(path, "expected an array of group ids");
				out->agids[out->nagids++] = (unsigned)c->i;
			}
		}
	}
	struct jval *caps = json_get(p, "capabilities");
	snprintf(path, sizeof(path), "%s.capabilities", where);
	if ((r = want(caps, J_OBJ, path)) < 0) return -1;
	if (r) {
		static const char *sets[] = { "bounding", "effective", "inheritable", "permitted", "ambient" };
		out->has_caps = 1;
		for (int i = 0; i < 5; i++) {
			struct jval *set = json_get(caps, sets[i]);
			snprintf(path, sizeof(path), "%s.capabilities.%s", where, sets[i]);
			if ((r = want(set, J_ARR, path)) < 0) return -1;
			if (!r) continue;
			for (struct jval *c = set->child; c; c = c->next) {
				if (c->t != J_STR) return BAD(path, "expected an array of capability names");
				int cap = cap_from_name(c->s);
				/* Like runc: a capability this build does not know is skipped, not fatal. */
				if (cap >= 0) out->caps[i] |= 1ULL << cap;
			}
		}
	}
	struct jval *rl = json_get(p, "rlimits");
	snprintf(path, sizeof(path), "%s.rlimits", where);
	if ((r = want(rl, J_ARR, path)) < 0) return -1;
	if (r) {
		out->rlimits = calloc(rl->len + 1, sizeof(*out->rlimits));
		int i = 0;
		for (struct jval *c = rl->child; c; c = c->next, i++) {
			char ep[160];
			snprintf(ep, sizeof(ep), "%s.rlimits[%d]", where, i);
			if (want(c, J_OBJ, ep) < 0) return -1;
			char *type = NULL;
			if (get_str(c, "type", ep, &type, 1) < 0) return -1;
			int res = -1;
			for (size_t k = 0; k < sizeof(rlims) / sizeof(rlims[0]); k++)
				if (strcmp(type, rlims[k].name) == 0) res = rlims[k].res;
			if (res < 0) return BAD(ep, "unknown rlimit type \"%.40s\"", type);
			unsigned long long soft = 0, hard = 0;
			if (get_uint(c, "soft", ep, ULLONG_MAX, &soft) < 0 ||
			    get_uint(c, "hard", ep, ULLONG_MAX, &hard) < 0)
				return -1;
			out->rlimits[out->nrlimits++] = (struct rlimit_spec){ res, soft, hard };
		}
	}
	return 0;
}

static const struct {
	const char *name;
	unsigned long set, clear, prop;
} mount_opts[] = {
	{ "ro", MS_RDONLY, 0, 0 },
	{ "rw", 0, MS_RDONLY, 0 },
	{ "nosuid", MS_NOSUID, 0, 0 },
	{ "suid", 0, MS_NOSUID, 0 },
	{ "nodev", MS_NODEV, 0, 0 },
	{ "dev", 0, MS_NODEV, 0 },
	{ "noexec", MS_NOEXEC, 0, 0 },
	{ "exec", 0, MS_NOEXEC, 0 },
	{ "sync", MS_SYNCHRONOUS, 0, 0 },
	{ "async", 0, MS_SYNCHRONOUS, 0 },
	{ "dirsync", MS_DIRSYNC, 0, 0 },
	{ "remount", MS_REMOUNT, 0, 0 },
	{ "mand", MS_MANDLOCK, 0, 0 },
	{ "nomand", 0, MS_MANDLOCK, 0 },
	{ "atime", 0, MS_NOATIME, 0 },
	{ "noatime", MS_NOATIME, 0, 0 },
	{ "diratime", 0, MS_NODIRATIME, 0 },
	{ "nodiratime", MS_NODIRATIME, 0, 0 },
	{ "relatime", MS_RELATIME, 0, 0 },
	{ "norelatime", 0, MS_RELATIME, 0 },
	{ "strictatime", MS_STRICTATIME, 0, 0 },
	{ "nostrictatime", 0, MS_STRICTATIME, 0 },
	{ "private", 0, 0, MS_PRIVATE },
	{ "rprivate", 0, 0, MS_PRIVATE | MS_REC },
	{ "shared", 0, 0, MS_SHARED },
	{ "rshared", 0, 0, MS_SHARED | MS_REC },
	{ "slave", 0, 0, MS_SLAVE },
	{ "rslave", 0, 0, MS_SLAVE | MS_REC },
	{ "unbindable", 0, 0, MS_UNBINDABLE },
	{ "runbindable", 0, 0, MS_UNBINDABLE | MS_REC },
};

static int parse_mount(const struct jval *m, int i, struct mount_spec *out)
{
	char path[64];
	snprintf(path, sizeof(path), "mounts[%d]", i);
	memset(out, 0, sizeof(*out));
	if (want(m, J_OBJ, path) < 0) return -1;
	snprintf(path, sizeof(path), "mounts[%d].destination", i);
	if (get_str(m, "destination", path, &out->dest, 1) < 0) return -1;
	if (out->dest[0] != '/') return BAD(path, "expected an absolute path, got \"%.80s\"", out->dest);
	out->type = "none";
	out->source = "none";
	snprintf(path, sizeof(path), "mounts[%d].type", i);
	if (get_str(m, "type", path, &out->type, 0) < 0) return -1;
	snprintf(path, sizeof(path), "mounts[%d].source", i);
	if (get_str(m, "source", path, &out->source, 0) < 0) return -1;
	char **opts;
	int nopts;
	snprintf(path, sizeof(path), "mounts[%d].options", i);
	if (str_array(json_get(m, "options"), path, &opts, &nopts, 0)) return -1;
	size_t dl = 0;
	for (int k = 0; k < nopts; k++) {
		const char *o = opts[k];
		if (strcmp(o, "bind") == 0) {
			out->bind = 1;
			continue;
		}
		if (strcmp(o, "rbind") == 0) {
			out->bind = 1;
			out->rec = 1;
			continue;
		}
		int found = 0;
		for (size_t j = 0; j < sizeof(mount_opts) / sizeof(mount_opts[0]); j++)
			if (strcmp(o, mount_opts[j].name) == 0) {
				out->flags |= mount_opts[j].set;
				out->flags &= ~mount_opts[j].clear;
				out->clear |= mount_opts[j].clear;
				out->prop |= mount_opts[j].prop;
				found = 1;
			}
		if (found) continue;
		size_t ol = strlen(o);
		if (dl + ol + 2 >= sizeof(out->data)) return BAD(path, "options too long");
		if (dl) out->data[dl++] = ',';
		memcpy(out->data + dl, o, ol + 1);
		dl += ol;
	}
	free(opts);
	if (strcmp(out->type, "bind") == 0) out->bind = 1;
	return 0;
}

static const struct {
	const char *name;
	int flag;
} ns_types[] = {
	{ "pid", CLONE_NEWPID }, { "network", CLONE_NEWNET }, { "mount", CLONE_NEWNS },      { "ipc", CLONE_NEWIPC },
	{ "uts", CLONE_NEWUTS }, { "user", CLONE_NEWUSER },   { "cgroup", CLONE_NEWCGROUP },
};

int ns_path_for(const struct spec *s, int flag, const char **path)
{
	for (int i = 0; i < s->nns; i++)
		if (s->ns[i].flag == flag) {
			*path = s->ns[i].path;
			return 1;
		}
	return 0;
}

/* The namespace a sysctl belongs to (CLONE_NEW*), 0 for one of the whole host. */
static int sysctl_namespace(const char *key)
{
	static const char *ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",          "kernel.sem",
		                     "kernel.shmall", "kernel.shmmax", "kernel.shm_rmid_forced", "kernel.shmmni" };
	for (size_t i = 0; i < sizeof(ipc) / sizeof(ipc[0]); i++)
		if (!strcmp(key, ipc[i])) return CLONE_NEWIPC;
	if (!strncmp(key, "fs.mqueue.", 10)) return CLONE_NEWIPC;
	if (!strncmp(key, "net.", 4)) return CLONE_NEWNET;
	if (!strcmp(key, "kernel.hostname") || !strcmp(key, "kernel.domainname")) return CLONE_NEWUTS;
	return 0;
}

static int sysctl_check(const struct spec *s, const char *key)
{
	int ns = sysctl_namespace(key);
	const char *path = NULL;
	if (!ns)
		return BAD("linux.sysctl",
		           "\"%.60s\" is not in a separate kernel namespace: it would be set for the host", key);
	if (!ns_path_for(s, ns, &path))
		return BAD("linux.sysctl", "\"%.60s\" needs a %s namespace of the container's own", key,
		           ns == CLONE_NEWNET   ? "network"
		           : ns == CLONE_NEWIPC ? "ipc"
		                                : "uts");
	if (path) {
		/* joined by path: it must not be the host's (ours) */
		struct stat a, b;
		const char *self = ns == CLONE_NEWNET   ? "/proc/self/ns/net"
		                   : ns == CLONE_NEWIPC ? "/proc/self/ns/ipc"
		                                        : "/proc/self/ns/uts";
		if (stat(path, &a) == 0 && stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return BAD("linux.sysctl", "\"%.60s\": the namespace %s is the host's", key, path);
	}
	return 0;
}

static int parse_idmaps(const struct jval *arr, const char *path, struct idmap *maps, int *n)
{
	int r = want(arr, J_ARR, path);
	if (r <= 0) return r;
	for (struct jval *c = arr->child; c; c = c->next) {
		if (*n >= 16) return BAD(path, "too many mappings (max 16)");
		unsigned long long a = 0, b = 0, sz = 0;
		if (want(c, J_OBJ, path) < 0) return -1;
		if (get_uint(c, "containerID", path, UINT_MAX, &a) <= 0 ||
		    get_uint(c, "hostID", path, UINT_MAX, &b) <= 0 || get_uint(c, "size", path, UINT_MAX, &sz) <= 0)
			return g_err[0] ? -1 : BAD(path, "expected containerID, hostID and size");
		maps[(*n)++] = (struct idmap){ (unsigned)a, (unsigned)b, (unsigned)sz };
	}
	return 0;
}

static int parse_resources(const struct jval *r, struct resources *res)
{
	int k;
	if ((k = want(r, J_OBJ, "linux.resources")) <= 0) return k;
	struct jval *mem = json_get(r, "memory");
	if ((k = want(mem, J_OBJ, "linux.resources.memory")) < 0) return -1;
	if (k) {
		if (get_int(mem, "limit", "linux.resources.memory.limit", &res->mem_limit) < 0) return -1;
		if ((res->has_swap = get_int(mem, "swap", "linux.resources.memory.swap", &res->mem_swap)) < 0)
			return -1;
		if (get_int(mem, "reservation", "linux.resources.memory.reservation", &res->mem_reservation) < 0)
			return -1;
		if ((k = get_uint(mem, "swappiness", "linux.resources.memory.swappiness", 100, &res->swappiness)) < 0)
			return -1;
		res->has_swappiness = k;
		if (res->mem_limit == 0 || res->mem_limit < -1)
			return BAD("linux.resources.memory.limit", "expected a positive number of bytes or -1");
		if (res->mem_limit > 0 && res->mem_limit < 6 * 1024 * 1024)
			return BAD("linux.resources.memory.limit", "minimum memory limit is 6 MiB, got %lld bytes",
			           res->mem_limit);
		if (res->has_swap && (res->mem_swap == 0 || res->mem_swap < -1))
			return BAD("linux.resources.memory.swap", "expected a positive number of bytes or -1");
		if (res->mem_swap > 0 && res->mem_limit > 0 && res->mem_swap < res->mem_limit)
			return BAD("linux.resources.memory.swap", "must be >= memory.limit (it is memory+swap)");
	}
	struct jval *cpu = json_get(r, "cpu");
	if ((k = want(cpu, J_OBJ, "linux.resources.cpu")) < 0) return -1;
	if (k) {
		if (get_uint(cpu, "shares", "linux.resources.cpu.shares", 262144, &res->cpu_shares) < 0) return -1;
		if (get_int(cpu, "quota", "linux.resources.cpu.quota", &res->cpu_quota) < 0) return -1;
		if (get_uint(cpu, "period", "linux.resources.cpu.period", 1000000, &res->cpu_period) < 0) return -1;
		if (get_str(cpu, "cpus", "linux.resources.cpu.cpus", &res->cpus, 0) < 0) return -1;
		if (get_str(cpu, "mems", "linux.resources.cpu.mems", &res->mems, 0) < 0) return -1;
		if (res->cpu_shares == 1) return BAD("linux.resources.cpu.shares", "must be >= 2");
		if (res->cpu_quota > 0 && res->cpu_quota < 1000)
			return BAD("linux.resources.cpu.quota", "must be >= 1000 microseconds");
	}
	struct jval *pids = json_get(r, "pids");
	if ((k = want(pids, J_OBJ, "linux.resources.pids")) < 0) return -1;
	if (k && get_int(pids, "limit", "linux.resources.pids.limit", &res->pids_limit) < 0) return -1;
	struct jval *devs = json_get(r, "devices");
	if ((k = want(devs, J_ARR, "linux.resources.devices")) < 0) return -1;
	if (k) {
		res->has_devices = 1;
		res->devs = calloc(devs->len + 1, sizeof(*res->devs));
		int i = 0;
		for (struct jval *d = devs->child; d; d = d->next, i++) {
			char path[64];
			snprintf(path, sizeof(path), "linux.resources.devices[%d]", i);
			if (want(d, J_OBJ, path) < 0) return -1;
			struct dev_rule *rule = &res->devs[res->ndevs++];
			rule->major = rule->minor = -1;
			rule->type = 'a';
			strcpy(rule->access, "rwm");
			if (get_bool(d, "allow", path, &rule->allow) <= 0)
				return g_err[0] ? -1 : BAD(path, "missing allow");
			char *t = NULL, *acc = NULL;
			if (get_str(d, "type", path, &t, 0) < 0 || get_str(d, "access", path, &acc, 0) < 0) return -1;
			if (t) {
				if (strlen(t) != 1 || !strchr("abc", t[0])) return BAD(path, "type must be a, b or c");
				rule->type = t[0];
			}
			if (acc) {
				if (strlen(acc) > 3 || strspn(acc, "rwm") != strlen(acc))
					return BAD(path, "access must be a combination of r, w, m");
				strcpy(rule->access, acc);
			}
			if (get_int(d, "major", path, &rule->major) < 0 || get_int(d, "minor", path, &rule->minor) < 0)
				return -1;
		}
	}
	return 0;
}

const char *const hook_names[HOOK_KINDS] = { "prestart",       "createRuntime", "createContainer",
	                                     "startContainer", "poststart",     "poststop" };

static int parse_hooks(const struct jval *hv, struct spec *s)
{
	int k = want(hv, J_OBJ, "hooks");
	if (k <= 0) return k;
	for (int kind = 0; kind < HOOK_KINDS; kind++) {
		char path[96];
		snprintf(path, sizeof(path), "hooks.%s", hook_names[kind]);
		struct jval *list = json_get(hv, hook_names[kind]);
		if ((k = want(list, J_ARR, path)) < 0) return -1;
		if (!k) continue;
		s->hooks[kind] = calloc(list->len + 1, sizeof(struct hook));
		int i = 0;
		for (struct jval *h = list->child; h; h = h->next, i++) {
			char hp[128], ap[140];
			snprintf(hp, sizeof(hp), "%s[%d]", path, i);
			if (want(h, J_OBJ, hp) < 0) return -1;
			struct hook *o = &s->hooks[kind][i];
			snprintf(ap, sizeof(ap), "%s.path", hp);
			if (get_str(h, "path", ap, &o->path, 1) < 0) return -1;
			if (o->path[0] != '/') return BAD(ap, "must be an absolute path");
			int n;
			snprintf(ap, sizeof(ap), "%s.args", hp);
			if (str_array(json_get(h, "args"), ap, &o->args, &n, 0)) return -1;
			if (n == 0) {
				o->args = calloc(2, sizeof(char *));
				o->args[0] = o->path;
			}
			snprintf(ap, sizeof(ap), "%s.env", hp);
			if (str_array(json_get(h, "env"), ap, &o->env, &n, 0)) return -1;
			long long t = 0;
			snprintf(ap, sizeof(ap), "%s.timeout", hp);
			if (get_int(h, "timeout", ap, &t) < 0) return -1;
			if (json_get(h, "timeout") && t <= 0) return BAD(ap, "must be greater than zero");
			o->timeout = t > 86400 ? 86400 : (int)t;
		}
		s->nhooks[kind] = i;
	}
	return 0;
}

int spec_parse_text(const char *text, size_t len, const char *bundle, struct spec *s)
{
	char perrbuf[256];
	memset(s, 0, sizeof(*s));
	s->res.mem_limit = s->res.mem_swap = s->res.mem_reservation = -1;
	g_err[0] = 0;
	struct jval *root = json_parse(text, len, perrbuf, sizeof(perrbuf));
	if (!root) return seterr("config.json: invalid JSON: %s", perrbuf);
	if (root->t != J_OBJ) return seterr("config.json: expected a JSON object at the top level");
	if (get_str(root, "ociVersion", "ociVersion", &s->oci_version, 1) < 0) return -1;
	if (parse_hooks(json_get(root, "hooks"), s)) return -1;
	struct jval *rootv = json_get(root, "root");
	if (!rootv) return BAD("root", "missing (expected an object with a path)");
	if (want(rootv, J_OBJ, "root") < 0) return -1;
	char *rp;
	if (get_str(rootv, "path", "root.path", &rp, 1) < 0) return -1;
	if (!rp[0]) return BAD("root.path", "expected a non-empty path");
	if (rp[0] == '/')
		s->root_path = rp;
	else {
		size_t n = strlen(bundle) + strlen(rp) + 2;
		s->root_path = malloc(n);
		snprintf(s->root_path, n, "%s/%s", bundle, rp);
	}
	if (get_bool(rootv, "readonly", "root.readonly", &s->root_ro) < 0) return -1;
	if (get_str(root, "hostname", "hostname", &s->hostname, 0) < 0) return -1;
	if (spec_parse_process(json_get(root, "process"), &s->proc, "process")) return -1;
	if (s->proc.terminal)
		return BAD("process.terminal",
		           "terminal=true is not supported (stdio is passed through); set it to false");

	struct jval *mounts = json_get(root, "mounts");
	int k;
	if ((k = want(mounts, J_ARR, "mounts")) < 0) return -1;
	if (k) {
		s->mounts = calloc(mounts->len + 1, sizeof(*s->mounts));
		int i = 0;
		for (struct jval *m = mounts->child; m; m = m->next, i++)
			if (parse_mount(m, i, &s->mounts[s->nmounts++])) return -1;
	}
	struct jval *linux_ = json_get(root, "linux");
	if ((k = want(linux_, J_OBJ, "linux")) < 0) return -1;
	s->annotations = json_get(root, "annotations");
	if (s->annotations && s->annotations->t != J_OBJ) return BAD("annotations", "expected an object");
	if (!k) return 0;

	struct jval *nss = json_get(linux_, "namespaces");
	if ((k = want(nss, J_ARR, "linux.namespaces")) < 0) return -1;
	if (k) {
		int i = 0;
		for (struct jval *n = nss->child; n; n = n->next, i++) {
			char path[64], *type = NULL, *p = NULL;
			snprintf(path, sizeof(path), "linux.namespaces[%d]", i);
			if (want(n, J_OBJ, path) < 0) return -1;
			if (get_str(n, "type", path, &type, 1) < 0 || get_str(n, "path", path, &p, 0) < 0) return -1;
			int flag = 0;
			for (size_t j = 0; j < sizeof(ns_types) / sizeof(ns_types[0]); j++)
				if (strcmp(type, ns_types[j].name) == 0) flag = ns_types[j].flag;
			if (!flag) return BAD(path, "unknown namespace type \"%.40s\"", type);
			for (int j = 0; j < s->nns; j++)
				if (s->ns[j].flag == flag) return BAD(path, "namespace \"%s\" listed twice", type);
			if (p && !*p) p = NULL;
			s->ns[s->nns++] = (struct ns_spec){ flag, p };
			if (!p) s->ns_flags |= flag;
		}
	}
	if (parse_idmaps(json_get(linux_, "uidMappings"), "linux.uidMappings", s->uidmap, &s->nuid) < 0) return -1;
	if (parse_idmaps(json_get(linux_, "gidMappings"), "linux.gidMappings", s->gidmap, &s->ngid) < 0) return -1;
	if ((s->ns_flags & CLONE_NEWUSER) && (!s->nuid || !s->ngid))
		return BAD("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings");
	if (get_str(linux_, "cgroupsPath", "linux.cgroupsPath", &s->cgroups_path, 0) < 0) return -1;
	if (s->cgroups_path &&
	    (strstr(s->cgroups_path, "..") || (s->cgroups_path[0] != '/' && strchr(s->cgroups_path, ':'))))
		return BAD(
			"linux.cgroupsPath",
			"expected a path like /parent/id (systemd slice:prefix:name is not supported), got \"%.80s\"",
			s->cgroups_path);
	if (parse_resources(json_get(linux_, "resources"), &s->res) < 0) return -1;
	if (str_array(json_get(linux_, "maskedPaths"), "linux.maskedPaths", &s->masked, &s->nmasked, 0)) return -1;
	if (str_array(json_get(linux_, "readonlyPaths"), "linux.readonlyPaths", &s->readonly, &s->nreadonly, 0))
		return -1;
	char *prop = NULL;
	if (get_str(linux_, "rootfsPropagation", "linux.rootfsPropagation", &prop, 0) < 0) return -1;
	if (prop) {
		for (size_t j = 0; j < sizeof(mount_opts) / sizeof(mount_opts[0]); j++)
			if (strcmp(prop, mount_opts[j].name) == 0) s->rootfs_prop = mount_opts[j].prop;
		if (!s->rootfs_prop) return BAD("linux.rootfsPropagation", "unknown propagation \"%.40s\"", prop);
	}
	struct jval *sys = json_get(linux_, "sysctl");
	/* Only sysctls of a namespace the container has of its own, as runc: anything else would be
	 * written for the whole host. */
	if ((k = want(sys, J_OBJ, "linux.sysctl")) < 0) return -1;
	if (k) {
		s->sysctl_k = calloc(sys->len + 1, sizeof(char *));
		s->sysctl_v = calloc(sys->len + 1, sizeof(char *));
		for (struct jval *c = sys->child; c; c = c->next) {
			if (c->t != J_STR) return BAD("linux.sysctl", "value of \"%.60s\" must be a string", c->key);
			if (strstr(c->key, "..") || strchr(c->key, '/'))
				return BAD("linux.sysctl", "invalid key \"%.60s\"", c->key);
			if (sysctl_check(s, c->key)) return -1;
			s->sysctl_k[s->nsysctl] = c->key;
			s->sysctl_v[s->nsysctl++] = c->s;
		}
	}
	struct jval *sc = json_get(linux_, "seccomp");
	if (sc && sc->t != J_NULL && !(s->seccomp = seccomp_compile(sc))) return -1;
	struct jval *devs = json_get(linux_, "devices");
	if ((k = want(devs, J_ARR, "linux.devices")) < 0) return -1;
	if (k) {
		s->devices = calloc(devs->len + 1, sizeof(*s->devices));
		int i = 0;
		for (struct jval *d = devs->child; d; d = d->next, i++) {
			char path[64], *t = NULL;
			snprintf(path, sizeof(path), "linux.devices[%d]", i);
			if (want(d, J_OBJ, path) < 0) return -1;
			struct dev_node *n = &s->devices[s->ndevices++];
			if (get_str(d, "path", path, &n->path, 1) < 0 || get_str(d, "type", path, &t, 1) < 0) return -1;
			if (n->path[0] != '/' || strstr(n->path, "..")) return BAD(path, "path must be absolute");
			if (strlen(t) != 1 || !strchr("cbup", t[0])) return BAD(path, "type must be c, b, u or p");
			n->type = t[0] == 'u' ? 'c' : t[0];
			if (get_int(d, "major", path, &n->major) < 0 || get_int(d, "minor", path, &n->minor) < 0)
				return -1;
			unsigned long long v;
			if ((k = get_uint(d, "fileMode", path, 07777, &v)) < 0) return -1;
			if (k) {
				n->has_mode = 1;
				n->mode = (unsigned)v;
			}
			if ((k = get_uint(d, "uid", path, UINT_MAX, &v)) < 0) return -1;
			if (k) {
				n->has_uid = 1;
				n->uid = (unsigned)v;
			}
			if ((k = get_uint(d, "gid", path, UINT_MAX, &v)) < 0) return -1;
			if (k) {
				n->has_gid = 1;
				n->gid = (unsigned)v;
			}
		}
	}
	return 0;
}

int spec_load(const char *bundle, struct spec *s, char **raw, size_t *rawlen)
{
	char path[4096];
	size_t len;
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	char *text = read_file(path, &len);
	if (!text) {
		if (errno == ENOENT) return seterr("bundle %s: config.json not found", bundle);
		return seterr("bundle %s: config.json: %s", bundle, strerror(errno));
	}
	if (raw) {
		*raw = text;
		*rawlen = len;
	}
	return spec_parse_text(text, len, bundle, s);
}
