#include "control.h"
#include "records.h"
#include "resolver.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most A records one reply over TCP (64 KiB) can carry, with room for the question. */
#define MAX_ADDRS 4000
#define MAX_LINE (128 * 1024)

static void reply_line(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0) return;
	if ((size_t)n > sizeof(line) - 2) n = sizeof(line) - 2;
	line[n++] = '\n';
	/* stdout is a pipe to the daemon; if it went away, stdin's EOF ends us soon */
	for (int off = 0; off < n;) {
		ssize_t w = write(1, line + off, n - off);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) return;
		off += w;
	}
}

/* Lowercases NAME in place and drops one trailing dot. Names are service, task and tasks.SERVICE
 * names: letters, digits, '-' and '_' in dot-separated labels of 1..63, 253 at most in all. */
static const char *normalize_name(char *name, size_t *len)
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.') name[--n] = 0;
	if (!n || n > 253) return "a name has 1 to 253 characters";
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = name[i];
		if (c == '.') {
			if (!label) return "empty label";
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_') return "a name has only letters, digits, '-', '_' and dots";
		if (++label > 63) return "a label has at most 63 characters";
		name[i] = tolower(c);
	}
	if (!label) return "empty label";
	*len = n;
	return NULL;
}

static void cmd_set(char **argv, int argc)
{
	static uint32_t addrs[MAX_ADDRS];
	size_t len;
	if (argc < 3) {
		reply_line("error set needs a name and at least one address");
		return;
	}
	const char *bad = normalize_name(argv[1], &len);
	if (bad) {
		reply_line("error set %.260s: %s", argv[1], bad);
		return;
	}
	if (argc - 2 > MAX_ADDRS) {
		reply_line("error set %s: %d addresses, at most %d", argv[1], argc - 2, MAX_ADDRS);
		return;
	}
	for (int i = 2; i < argc; i++)
		if (inet_pton(AF_INET, argv[i], &addrs[i - 2]) != 1) {
			reply_line("error set %s: not an IPv4 address: %.64s", argv[1], argv[i]);
			return;
		}
	uint32_t count = argc - 2;
	uint32_t *copy = malloc(count * sizeof(*copy));
	if (!copy) die("out of memory");
	memcpy(copy, addrs, count * sizeof(*copy));
	record_set(argv[1], len, copy, count);
}

static void cmd_del(char **argv, int argc)
{
	size_t len;
	if (argc != 2) {
		reply_line("error del needs one name");
		return;
	}
	const char *bad = normalize_name(argv[1], &len);
	if (bad) {
		reply_line("error del %.260s: %s", argv[1], bad);
		return;
	}
	record_del(argv[1], len);
}

static void run_command(char *line)
{
	static char *argv[MAX_ADDRS + 3];
	int argc = 0;
	for (char *tok = strtok(line, " \t\r"); tok; tok = strtok(NULL, " \t\r")) {
		if (argc == MAX_ADDRS + 3) {
			reply_line("error too many words on one line (at most %d addresses)", MAX_ADDRS);
			return;
		}
		argv[argc++] = tok;
	}
	if (!argc) return;
	if (!strcmp(argv[0], "set"))
		cmd_set(argv, argc);
	else if (!strcmp(argv[0], "del"))
		cmd_del(argv, argc);
	else if (!strcmp(argv[0], "clear") && argc == 1)
		records_clear();
	else if (!strcmp(argv[0], "sync") && argc == 1)
		reply_line("ok");
	else
		reply_line("error unknown command: %.64s (set NAME IP..., del NAME, clear, sync)", argv[0]);
}

static char line_buf[MAX_LINE];
static size_t line_len;
static int line_overflow; /* discarding the rest of a line that was too long */

/* Returns 0 on EOF. */
int read_commands(void)
{
	ssize_t n = read(0, line_buf + line_len, sizeof(line_buf) - line_len);
	if (n < 0) return errno == EINTR || errno == EAGAIN;
	if (n == 0) return 0;
	size_t end = line_len + n, start = 0;
	for (size_t i = line_len; i < end; i++) {
		if (line_buf[i] != '\n') continue;
		line_buf[i] = 0;
		if (line_overflow) {
			line_overflow = 0;
			reply_line("error line longer than %d bytes", MAX_LINE);
		} else {
			run_command(line_buf + start);
		}
		start = i + 1;
	}
	memmove(line_buf, line_buf + start, end - start);
	line_len = end - start;
	if (line_len == sizeof(line_buf)) {
		line_overflow = 1;
		line_len = 0;
	}
	return 1;
}
