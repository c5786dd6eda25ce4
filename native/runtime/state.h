/* Per-container state under --root: state.json (runc-like), a copy of config.json, exec.fifo. */
#ifndef TSS_STATE_H
#define TSS_STATE_H
#include <sys/types.h>

struct cstate {
	char id[1100];
	pid_t pid;
	unsigned long long start; /* /proc/<pid>/stat starttime: guards against pid reuse */
	char bundle[4096];
	char rootfs[4096];
	char created[64];
	char cgpath[1100];
	int pidns, cpuset;
	char *annotations; /* raw JSON object text */
	char dir[4200];
};

int state_path(const char *root, const char *id, const char *file, char *out, size_t cap);
int state_write(const char *root, const struct cstate *st);
int state_read(const char *root, const char *id, struct cstate *st);
/* "created", "running", "paused" or "stopped", from the live process and the freezer. */
const char *state_status(const char *root, const struct cstate *st);
int state_alive(const struct cstate *st);
void state_remove(const char *root, const char *id);
#endif
