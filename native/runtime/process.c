#include "process.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int last_cap(void)
{
	char buf[16];
	if (read_small("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0) return atoi(buf);
	return 40;
}

static int apply_caps(const struct process_spec *p)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	for (int w = 0; w < 2; w++) {
		data[w].effective = (uint32_t)(p->caps[CAPSET_EFFECTIVE] >> (32 * w));
		data[w].permitted = (uint32_t)(p->caps[CAPSET_PERMITTED] >> (32 * w));
		data[w].inheritable = (uint32_t)(p->caps[CAPSET_INHERITABLE] >> (32 * w));
	}
	if (syscall(SYS_capset, &hdr, data) < 0) return seterr("capset: %s", strerror(errno));
	/* Ambient needs the cap in permitted and inheritable; runc skips the rest, and so do we. */
	for (int c = 0; c < 64; c++)
		if (p->caps[CAPSET_AMBIENT] & (1ULL << c)) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
	return 0;
}

static int find_in_path(const struct process_spec *p, char *out, size_t cap)
{
	const char *a0 = p->args[0];
	struct stat st;
	if (strchr(a0, '/')) {
		if (stat(a0, &st) < 0) return seterr("exec %s: %s", a0, strerror(errno));
		if (!S_ISREG(st.st_mode)) return seterr("exec %s: not a regular file", a0);
		snprintf(out, cap, "%s", a0);
		return 0;
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (int i = 0; i < p->nenv; i++)
		if (strncmp(p->env[i], "PATH=", 5) == 0) path = p->env[i] + 5;
	for (const char *s = path; *s;) {
		const char *e = strchr(s, ':');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		snprintf(out, cap, "%.*s/%s", (int)n, n ? s : ".", a0);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) return 0;
		if (!e) break;
		s = e + 1;
	}
	return seterr("exec: \"%s\": executable file not found in $PATH", a0);
}

int process_prepare(const struct process_spec *p, char *path, size_t cap)
{
	if (p->has_oom) {
		char b[16];
		snprintf(b, sizeof(b), "%d", p->oom_score_adj);
		if (write_str("/proc/self/oom_score_adj", b) < 0) return seterr("oomScoreAdj: %s", strerror(errno));
	}
	for (int i = 0; i < p->nrlimits; i++) {
		struct rlimit rl = { p->rlimits[i].soft, p->rlimits[i].hard };
		if (setrlimit(p->rlimits[i].res, &rl) < 0)
			return seterr("setrlimit %d: %s", p->rlimits[i].res, strerror(errno));
	}
	int cwd_ok =
		chdir(p->cwd) == 0; /* retried below as the target user (root may lack search permission on NFS etc.) */
	if (p->has_caps) {
		int lc = last_cap();
		for (int c = 0; c <= lc; c++)
			if (!(p->caps[CAPSET_BOUNDING] & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 &&
			    errno != EINVAL)
				return seterr("drop bounding capability %d: %s", c, strerror(errno));
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return seterr("keepcaps: %s", strerror(errno));
	}
	gid_t groups[64];
	int ng = p->nagids > 64 ? 64 : p->nagids;
	for (int i = 0; i < ng; i++) groups[i] = p->agids[i];
	/* setgroups is denied in a user namespace whose gid_map was written with setgroups=deny. */
	if (setgroups((size_t)ng, groups) < 0 && !(errno == EPERM && ng == 0))
		return seterr("setgroups: %s", strerror(errno));
	if (setresgid(p->gid, p->gid, p->gid) < 0) return seterr("setgid %u: %s", p->gid, strerror(errno));
	if (setresuid(p->uid, p->uid, p->uid) < 0) return seterr("setuid %u: %s", p->uid, strerror(errno));
	if (p->has_caps) {
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
		if (apply_caps(p)) return -1;
	}
	if (!cwd_ok && chdir(p->cwd) < 0) return seterr("chdir to cwd %s: %s", p->cwd, strerror(errno));
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return seterr("no_new_privs: %s", strerror(errno));
	return find_in_path(p, path, cap);
}

int process_exec(const struct process_spec *p, const char *path)
{
	execve(path, p->args, p->env);
	return seterr("exec %s: %s", path, strerror(errno));
}
