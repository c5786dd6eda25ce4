/* The subset of the OCI runtime spec we honour, validated into plain C structs. */
#ifndef TSS_SPEC_H
#define TSS_SPEC_H
#include <stdint.h>
#include <sys/types.h>
#include "json.h"
#include "seccomp.h"

#define CAPSET_BOUNDING 0
#define CAPSET_EFFECTIVE 1
#define CAPSET_INHERITABLE 2
#define CAPSET_PERMITTED 3
#define CAPSET_AMBIENT 4

struct mount_spec {
	char *dest, *type, *source;
	unsigned long flags; /* MS_* for the mount itself */
	unsigned long clear; /* flags explicitly cleared (rw, suid, ...) */
	unsigned long prop;  /* MS_PRIVATE/MS_SLAVE/MS_SHARED (+MS_REC) */
	int bind, rec;
	char data[512];
};

struct ns_spec {
	int flag;
	char *path;
};
struct idmap {
	unsigned cid, hid, size;
};
struct rlimit_spec {
	int res;
	unsigned long long soft, hard;
};
struct dev_rule {
	int allow;
	char type;
	long long major, minor;
	char access[4];
};
struct dev_node {
	char *path;
	char type;
	long long major, minor;
	unsigned mode;
	unsigned uid, gid;
	int has_mode, has_uid, has_gid;
};

/* OCI hooks, by when they run (config.md "POSIX-platform Hooks"). */
enum hook_kind {
	HOOK_PRESTART,
	HOOK_CREATE_RUNTIME,
	HOOK_CREATE_CONTAINER,
	HOOK_START_CONTAINER,
	HOOK_POSTSTART,
	HOOK_POSTSTOP,
	HOOK_KINDS
};
struct hook {
	char *path;
	char **args; /* NULL-terminated; args[0] is path when the spec gives none */
	char **env;  /* NULL-terminated, empty when the spec gives none */
	int timeout; /* seconds, 0 = none */
};

struct process_spec {
	char **args;
	int nargs;
	char **env;
	int nenv;
	char *cwd;
	unsigned uid, gid;
	unsigned *agids;
	int nagids;
	int has_caps;
	uint64_t caps[5];
	struct rlimit_spec *rlimits;
	int nrlimits;
	int no_new_privs;
	int has_oom;
	int oom_score_adj;
	int terminal;
};

struct resources {
	long long mem_limit, mem_swap, mem_reservation; /* -1 = unset (swap: -1 with has_swap = unlimited) */
	int has_swap;
	int has_swappiness;
	unsigned long long swappiness;
	unsigned long long cpu_shares;
	long long cpu_quota;
	unsigned long long cpu_period;
	char *cpus, *mems;
	long long pids_limit; /* 0 = unset */
	struct dev_rule *devs;
	int ndevs;
	int has_devices;
};

struct spec {
	char *oci_version;
	char *root_path; /* absolute */
	int root_ro;
	char *hostname;
	struct process_spec proc;
	struct mount_spec *mounts;
	int nmounts;
	struct ns_spec ns[8];
	int nns;
	int ns_flags; /* CLONE_NEW* of namespaces to create (no path) */
	struct idmap uidmap[16];
	int nuid;
	struct idmap gidmap[16];
	int ngid;
	char *cgroups_path;
	struct resources res;
	char **masked;
	int nmasked;
	char **readonly;
	int nreadonly;
	struct dev_node *devices;
	int ndevices;
	char **sysctl_k, **sysctl_v;
	int nsysctl;
	unsigned long rootfs_prop;
	struct jval *annotations;
	struct seccomp_prog *seccomp; /* compiled linux.seccomp, or NULL */
	struct hook *hooks[HOOK_KINDS];
	int nhooks[HOOK_KINDS];
};
extern const char *const hook_names[HOOK_KINDS];

/* Loads BUNDLE/config.json; on error g_err is "config.json: process.args: expected ...". */
int spec_load(const char *bundle, struct spec *s, char **raw, size_t *rawlen);
int spec_parse_text(const char *text, size_t len, const char *bundle, struct spec *s);
/* Parses a process object (also used by `exec --process FILE`). */
int spec_parse_process(const struct jval *p, struct process_spec *out, const char *where);
int cap_from_name(const char *name);
int signal_from_name(const char *name);
int ns_path_for(const struct spec *s, int flag, const char **path);
#endif
