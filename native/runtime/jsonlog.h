/* Container output as docker json-file lines: {"log":"...","stream":"stdout","time":"..."}. */
#ifndef TSS_JSONLOG_H
#define TSS_JSONLOG_H
#include <stddef.h>

#define LINE_MAX_BYTES 16384 /* docker's json-file splits longer lines into partial entries */

struct stream {
	int fd;           /* read end of the container's pipe, -1 at EOF */
	int log_fd;       /* O_APPEND log file */
	const char *name; /* "stdout" / "stderr" */
	char buf[LINE_MAX_BYTES];
	size_t len;
};

/* Reads what is there and logs complete lines; -1 at EOF (the partial last line is logged). */
int stream_read(struct stream *s);
/* Logs a pending partial line and closes the pipe. */
void stream_close(struct stream *s);
#endif
