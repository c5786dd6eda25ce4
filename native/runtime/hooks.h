/* OCI hooks: run with the container's state on stdin, a timeout, and the spec's rules on failure. */
#ifndef TSS_HOOKS_H
#define TSS_HOOKS_H
#include "spec.h"
#include "state.h"

/* Runs the spec's hooks of one kind in order, each with `state` (the state JSON) on its stdin; the
 * first that fails (exit status, signal, timeout, cannot exec) stops the list: -1 with g_err
 * "KIND hook PATH: what". Runs in the caller's namespaces. */
int hooks_run(const struct spec *s, enum hook_kind kind, const char *state);
/* For start and delete: the hooks of the container's config.json (kept in its state dir), and warn
 * (poststart, poststop: the spec makes their failure a warning) about the first that fails. The
 * spec is parsed only when the file names a hook of that kind. */
void hooks_warn_from_state(const char *root, const struct cstate *st, enum hook_kind kind, const char *status);
/* Whether the container's config.json (in its state dir) has hooks of this kind. */
int hooks_wanted(const char *root, const struct cstate *st, enum hook_kind kind);
/* The state JSON a hook reads: runc's (ociVersion, id, status, pid, bundle, annotations). */
void hooks_state(char *out, size_t cap, const struct spec *s, const struct cstate *cs, const char *status);
#endif
