/* cgroup v1 (one hierarchy per controller) and v2 (unified) behind one small interface. */
#ifndef TSS_CGROUP_H
#define TSS_CGROUP_H
#include <sys/types.h>
#include "spec.h"

#define CG_MAX 10

struct cgroup {
	int v2;
	char path[1024]; /* "/parent/id" as in linux.cgroupsPath */
	int n;
	char dir[CG_MAX][1200];      /* v1: one per hierarchy; v2: dir[0] only */
	const char *name[CG_MAX];    /* controller name of each v1 hierarchy */
	int mem, cpu, pids, freezer; /* index into dir[] or -1 */
	/* Hybrid host (v1 controllers + a cgroup2 tree at /sys/fs/cgroup/unified): the container also
	 * gets a cgroup there, holding the device program, as on a v2 host. */
	int has_unified;
	char unified[1200];
	int v1_devices; /* write v1 devices.allow/deny (0 with TSSWARM_RUNTIME_DEVICE_CGROUP=bpf) */
};

/* Resolves the hierarchies present on this host for path. want_cpuset adds cpuset (only when asked). */
int cg_init(struct cgroup *cg, const char *path, int want_cpuset);
int cg_create(struct cgroup *cg, const struct resources *res);
int cg_attach(struct cgroup *cg, pid_t pid);
int cg_freeze(struct cgroup *cg, int freeze);
int cg_is_frozen(struct cgroup *cg); /* 1 frozen, 0 not, -1 no freezer */
int cg_destroy(struct cgroup *cg);
int cg_pids(struct cgroup *cg, pid_t *out, int max);
long long cg_oom_kills(struct cgroup *cg);
int cg_is_v2_host(void);
/* Moves the calling single-threaded process in (fast path for v1, see cgroup.c). */
int cg_enter_self(struct cgroup *cg);
/* clone3(CLONE_INTO_CGROUP) into the leaf of cg_open_leaf, with these CLONE_* flags; -1 when
 * there is none (errno set) or clone3 failed. The child is born in the cgroup: no migration. */
pid_t cg_clone_into(struct cgroup *cg, unsigned long flags);
/* Hybrid host: moves the caller into the container's unified-tree cgroup, if it has one (exec). */
int cg_enter_unified(struct cgroup *cg);
/* An O_PATH fd of the (created) cgroup2 leaf for clone3(CLONE_INTO_CGROUP) (v2, or the unified
 * one of a hybrid host), or -1 when there is none. */
int cg_open_leaf(struct cgroup *cg);
#endif
