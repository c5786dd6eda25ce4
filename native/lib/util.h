/* Shared helpers: one error buffer carrying context up to the single stderr line, small file I/O. */
#ifndef TSS_UTIL_H
#define TSS_UTIL_H
#include <stddef.h>
#include <sys/types.h>

extern char g_err[1024];
/* Sets g_err (printf-style) and returns -1, so callers can `return seterr(...)`. */
int seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefixes the current g_err with more context ("cgroup memory: " + old). */
int adderr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

char *read_file(const char *path, size_t *len);              /* NULL + errno on failure */
ssize_t read_small(const char *path, char *buf, size_t cap); /* NUL-terminated */
int write_str(const char *path, const char *s);              /* open O_WRONLY, one write */
int write_atomic(const char *path, const char *data, size_t len);
int mkdir_p(const char *path, mode_t mode);
void fmt_time(char *buf, size_t cap, const struct timespec *ts); /* RFC3339 with nanoseconds, UTC */
void now_rfc3339(char *buf, size_t cap);
int write_all(int fd, const void *buf, size_t n);
unsigned long long proc_starttime(pid_t pid); /* 0 if the process is gone */
int valid_id(const char *id);
#endif
