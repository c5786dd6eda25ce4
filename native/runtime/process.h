/* The last steps before execve, shared by a container's init and by `exec`. */
#ifndef TSS_PROCESS_H
#define TSS_PROCESS_H
#include "spec.h"

/* rlimits, oom_score_adj, cwd, credentials, capabilities, no_new_privs; resolves args[0] on the
 * spec's PATH into path (so a missing binary is reported by `create`, not lost after start). */
int process_prepare(const struct process_spec *p, char *path, size_t cap);
/* Only returns on failure (g_err set). */
int process_exec(const struct process_spec *p, const char *path);
#endif
