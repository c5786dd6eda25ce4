/* CVE-2019-5736: a container must not be able to write the runtime's binary through /proc/PID/exe. */
#ifndef TSS_EXESEAL_H
#define TSS_EXESEAL_H

/* Re-executes the calling program from a copy of itself that cannot be written: a detached
 * read-only bind mount of its own file (open_tree + mount_setattr + execveat: no copy, the page
 * cache stays shared), else a sealed memfd copy. Returns 0 at once when /proc/self/exe already is
 * such a file; otherwise it returns only on failure (-1 with g_err). */
int exe_seal(char **argv);
#endif
