/*
 * tsswarm-launcher: runs the daemon's short-lived commands (tsswarm-shim, the runtime's pause/delete,
 * ip/nft batches, ...) and hands back their exit status and output.
 *
 * Why: the daemon is a Node process of 100+ MB, and fork() copies its page tables, so every spawn
 * from it costs ~3-5 ms more than the same spawn from a small process (measured on this machine
 * type: 1.2 ms at 50 MB RSS, 4.8 ms at 157 MB). The daemon starts this program once, while it is
 * small, and has it fork instead.
 *
 * Protocol on stdin/stdout, little-endian, any number of commands in flight:
 *   request:  u32 length-of-rest, u32 id, u32 argc, u32 input_len, u32 timeout_ms (0: none),
 *             argc NUL-terminated strings (argv[0] is the file, looked up on PATH if it has no '/'),
 *             input_len bytes for stdin
 * A command still running after its timeout gets SIGKILL (health checks: docker's --health-timeout),
 * with its whole process group: a `runtime exec` forks the check into the container, and killing
 * only the runtime would leave the check running there. Each command leads a process group of its own.
 *   response: u32 length-of-rest, u32 id, i32 exit_code (-1: killed), i32 signal, u32 stdout_len,
 *             u32 stderr_len, stdout bytes, stderr bytes
 * A response is sent once the command has exited and closed its stdout and stderr. When stdin ends
 * (the daemon is gone) the launcher exits; commands still running go on by themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COMMANDS 1024
#define MAX_REQUEST (16u << 20)

struct buf {
	uint8_t *data;
	size_t len, cap;
};

struct command {
	bool used;
	pid_t pid;
	uint32_t id;
	int out_fd, err_fd, in_fd; /* -1 once closed */
	struct buf out, err;
	uint8_t *input;
	size_t input_len, input_off;
	bool exited;
	int status;
	int64_t deadline_ms; /* CLOCK_MONOTONIC; 0: none */
	bool killed;         /* by its timeout: answered once it exits, without waiting for EOF */
};

static struct command commands[MAX_COMMANDS];

static void die(const char *what)
{
	fprintf(stderr, "tsswarm-launcher: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void buf_append(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len) cap *= 2;
		uint8_t *p = realloc(b->data, cap);
		if (!p) die("out of memory");
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	buf_append(b, le, 4);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) exit(0); /* the daemon is gone */
		p += n;
		len -= (size_t)n;
	}
}

static void respond(struct command *c)
{
	struct buf r = { 0 };
	int code = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
	int sig = WIFSIGNALED(c->status) ? WTERMSIG(c->status) : 0;
	put_u32(&r, (uint32_t)(20 + c->out.len + c->err.len));
	put_u32(&r, c->id);
	put_u32(&r, (uint32_t)code);
	put_u32(&r, (uint32_t)sig);
	put_u32(&r, (uint32_t)c->out.len);
	put_u32(&r, (uint32_t)c->err.len);
	buf_append(&r, c->out.data, c->out.len);
	buf_append(&r, c->err.data, c->err.len);
	write_all(STDOUT_FILENO, r.data, r.len);
	free(r.data);
	free(c->out.data);
	free(c->err.data);
	free(c->input);
	memset(c, 0, sizeof *c);
}

static void finish_if_done(struct command *c)
{
	if (c->used && c->exited && c->killed) {
		/* A descendant that escaped the kill may hold the pipes: do not wait for it. */
		if (c->out_fd >= 0) close(c->out_fd), c->out_fd = -1;
		if (c->err_fd >= 0) close(c->err_fd), c->err_fd = -1;
	}
	if (c->used && c->exited && c->out_fd < 0 && c->err_fd < 0) {
		if (c->in_fd >= 0) close(c->in_fd);
		respond(c);
	}
}

/* A command that cannot be started still gets its response: exit 127 and the reason on stderr. */
static void refuse(uint32_t id, const char *why)
{
	struct command c = {
		.used = true, .id = id, .status = 127 << 8, .out_fd = -1, .err_fd = -1, .in_fd = -1, .exited = true
	};
	buf_append(&c.err, why, strlen(why));
	respond(&c);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(uint32_t id, char **argv, const uint8_t *input, size_t input_len, uint32_t timeout_ms)
{
	struct command *c = NULL;
	for (size_t i = 0; i < MAX_COMMANDS && !c; i++)
		if (!commands[i].used) c = &commands[i];
	if (!c) {
		refuse(id, "tsswarm-launcher: too many commands in flight\n");
		return;
	}
	int in[2], out[2], err[2];
	if (pipe2(in, O_CLOEXEC) < 0) {
		refuse(id, "tsswarm-launcher: pipe failed\n");
		return;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]), close(in[1]);
		refuse(id, "tsswarm-launcher: pipe failed\n");
		return;
	}
	if (pipe2(err, O_CLOEXEC) < 0) {
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		refuse(id, "tsswarm-launcher: pipe failed\n");
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		for (int k = 0; k < 2; k++) close(in[k]), close(out[k]), close(err[k]);
		refuse(id, "tsswarm-launcher: fork failed\n");
		return;
	}
	if (pid == 0) {
		/* As a spawn from the daemon would leave them: default signals, nothing blocked. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setpgid(0, 0);
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]), close(out[1]), close(err[1]);
	setpgid(pid, pid); /* as the child does: whichever runs first, the group exists before a kill */
	*c = (struct command){ .used = true,
		               .pid = pid,
		               .id = id,
		               .out_fd = out[0],
		               .err_fd = err[0],
		               .in_fd = in[1],
		               .deadline_ms = timeout_ms ? now_ms() + timeout_ms : 0 };
	fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
	if (input_len) {
		c->input = malloc(input_len);
		if (!c->input) die("out of memory");
		memcpy(c->input, input, input_len);
		c->input_len = input_len;
	} else {
		close(c->in_fd);
		c->in_fd = -1;
	}
}

/* Parses and starts every complete request in `req`; keeps the rest. */
static void take_requests(struct buf *req)
{
	size_t off = 0;
	while (req->len - off >= 4) {
		uint32_t len = get_u32(req->data + off);
		if (len > MAX_REQUEST || len < 16) {
			errno = EPROTO;
			die("malformed request");
		}
		if (req->len - off - 4 < len) break;
		const uint8_t *p = req->data + off + 4, *end = p + len;
		uint32_t id = get_u32(p), argc = get_u32(p + 4), input_len = get_u32(p + 8),
			 timeout_ms = get_u32(p + 12);
		p += 16;
		if (argc == 0 || argc > 4096 || input_len > (size_t)(end - p)) {
			errno = EPROTO;
			die("malformed request");
		}
		char **argv = calloc(argc + 1, sizeof(char *));
		if (!argv) die("out of memory");
		const uint8_t *strings_end = end - input_len;
		for (uint32_t i = 0; i < argc; i++) {
			const uint8_t *nul = memchr(p, 0, (size_t)(strings_end - p));
			if (!nul) {
				errno = EPROTO;
				die("malformed request");
			}
			argv[i] = (char *)p;
			p = nul + 1;
		}
		start(id, argv, strings_end, input_len, timeout_ms);
		free(argv);
		off += 4 + len;
	}
	memmove(req->data, req->data + off, req->len - off);
	req->len -= off;
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < MAX_COMMANDS; i++) {
			if (commands[i].used && commands[i].pid == pid) {
				commands[i].exited = true;
				commands[i].status = status;
				finish_if_done(&commands[i]);
				break;
			}
		}
	}
}

/* Reads what is there; closes the fd at EOF. */
static void drain(struct command *c, int *fd, struct buf *into)
{
	uint8_t chunk[65536];
	ssize_t n = read(*fd, chunk, sizeof chunk);
	if (n > 0) {
		buf_append(into, chunk, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
	close(*fd);
	*fd = -1;
	finish_if_done(c);
}

static void feed(struct command *c)
{
	ssize_t n = write(c->in_fd, c->input + c->input_off, c->input_len - c->input_off);
	if (n > 0) c->input_off += (size_t)n;
	if ((n < 0 && errno != EAGAIN && errno != EINTR) || c->input_off == c->input_len) {
		close(c->in_fd); /* done, or the command closed its stdin (EPIPE): its status tells the story */
		c->in_fd = -1;
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) die("signalfd");

	struct buf req = { 0 };
	static struct pollfd fds[2 + 3 * MAX_COMMANDS];
	static struct {
		struct command *c;
		int which;
	} owner[2 + 3 * MAX_COMMANDS];
	for (;;) {
		nfds_t n = 0;
		fds[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		fds[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		for (size_t i = 0; i < MAX_COMMANDS; i++) {
			struct command *c = &commands[i];
			if (!c->used) continue;
			if (c->out_fd >= 0)
				owner[n].c = c, owner[n].which = 1,
				fds[n++] = (struct pollfd){ .fd = c->out_fd, .events = POLLIN };
			if (c->err_fd >= 0)
				owner[n].c = c, owner[n].which = 2,
				fds[n++] = (struct pollfd){ .fd = c->err_fd, .events = POLLIN };
			if (c->in_fd >= 0)
				owner[n].c = c, owner[n].which = 0,
				fds[n++] = (struct pollfd){ .fd = c->in_fd, .events = POLLOUT };
		}
		/* The nearest deadline bounds the wait; a command past its own is killed (once). */
		int wait_ms = -1;
		int64_t now = now_ms();
		for (size_t i = 0; i < MAX_COMMANDS; i++) {
			struct command *c = &commands[i];
			if (!c->used || c->exited || !c->deadline_ms) continue;
			if (c->deadline_ms <= now) {
				kill(-c->pid, SIGKILL);
				kill(c->pid, SIGKILL);
				c->deadline_ms = 0;
				c->killed = true;
				continue;
			}
			int left = (int)(c->deadline_ms - now);
			if (wait_ms < 0 || left < wait_ms) wait_ms = left;
		}
		if (poll(fds, n, wait_ms) < 0) {
			if (errno == EINTR) continue;
			die("poll");
		}
		if (fds[0].revents) {
			uint8_t chunk[65536];
			ssize_t r = read(STDIN_FILENO, chunk, sizeof chunk);
			if (r == 0 || (r < 0 && errno != EINTR)) return 0; /* the daemon is gone */
			if (r > 0) {
				buf_append(&req, chunk, (size_t)r);
				take_requests(&req);
			}
		}
		if (fds[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0) {
			}
			reap();
		}
		for (nfds_t k = 2; k < n; k++) {
			if (!fds[k].revents) continue;
			struct command *c = owner[k].c;
			/* An earlier fd of this poll round may have finished (and cleared) the command. */
			if (!c->used) continue;
			if (owner[k].which == 1 && c->out_fd == fds[k].fd)
				drain(c, &c->out_fd, &c->out);
			else if (owner[k].which == 2 && c->err_fd == fds[k].fd)
				drain(c, &c->err_fd, &c->err);
			else if (owner[k].which == 0 && c->in_fd == fds[k].fd)
				feed(c);
		}
	}
}
