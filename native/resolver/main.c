/*
 * tsswarm-resolver: the embedded DNS server of an overlay network's sandbox (Docker's embedded DNS).
 *
 *   tsswarm-resolver --netns PATH --listen IP[:PORT] [--upstream IP:PORT ...] [--upstream-conf FILE]
 *
 * The upstream sockets are created first, in the namespace the resolver starts in (the daemon's);
 * then it enters PATH and listens there. A socket keeps the namespace it was created in, so queries
 * for names it does not know reach the host's resolvers from inside the sandbox.
 *
 * The daemon feeds the records on stdin, one command a line:
 *   set NAME IP [IP...]   replace NAME's A records      del NAME    clear
 *   sync                  prints "ok" once every earlier command is applied
 * A bad command prints "error <reason>" and is ignored. EOF on stdin ends the process, so it
 * never outlives the daemon that feeds it.
 *
 * One thread, one poll loop, static buffers: nothing is allocated per query.
 */
#include "clients.h"
#include "control.h"
#include "forward.h"
#include "resolver.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_PORT 53

/* IPv4 "A.B.C.D[:PORT]", IPv6 "ADDR" or "[ADDR]:PORT". */
static int parse_endpoint(const char *s, addr_t *a, socklen_t *alen)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *port = NULL;
	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || (size_t)(close - s - 1) >= sizeof(host)) return -1;
		memcpy(host, s + 1, close - s - 1);
		host[close - s - 1] = 0;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return -1;
	} else {
		const char *colon = strchr(s, ':');
		if (strlen(s) >= sizeof(host)) return -1;
		strcpy(host, s);
		if (colon && !strchr(colon + 1, ':')) {
			host[colon - s] = 0;
			port = colon + 1;
		}
	}
	long p = DNS_PORT;
	if (port) {
		char *end;
		errno = 0;
		p = strtol(port, &end, 10);
		if (!*port || *end || errno || p < 1 || p > 65535) return -1;
	}
	if (inet_pton(AF_INET, host, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons((uint16_t)p);
		*alen = sizeof(a->in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons((uint16_t)p);
		*alen = sizeof(a->in6);
		return 0;
	}
	return -1;
}

static void upstreams_from_conf(const char *path, int required)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		if (required) die("--upstream-conf %s: %s", path, strerror(errno));
		return; /* no resolv.conf: no upstream, unknown names are NXDOMAIN */
	}
	char line[512];
	while (fgets(line, sizeof(line), f) && nups < MAX_UPSTREAMS) {
		char word[16], host[80];
		if (sscanf(line, " %15s %79s", word, host) != 2 || strcmp(word, "nameserver")) continue;
		char *scope = strchr(host, '%');
		if (scope) *scope = 0; /* a link-local scope: not meaningful to us */
		char endpoint[96];
		if (strchr(host, ':'))
			snprintf(endpoint, sizeof(endpoint), "[%s]:53", host);
		else
			snprintf(endpoint, sizeof(endpoint), "%s:53", host);
		if (parse_endpoint(endpoint, &ups[nups].addr, &ups[nups].len) == 0) nups++;
	}
	fclose(f);
}

static void usage(void)
{
	die("usage: tsswarm-resolver --netns PATH --listen IP[:PORT] [--upstream IP:PORT ...] [--upstream-conf FILE]");
}

static void open_upstreams(void)
{
	/* In the daemon's namespace: the sockets that reach the host's resolvers. Connected, so the
	 * kernel drops datagrams from anyone but that upstream. One this host has no route to (an IPv6
	 * nameserver on an IPv4-only host) is left out, with a warning: the others still serve. */
	size_t usable = 0;
	for (size_t i = 0; i < nups; i++) {
		char shown[INET6_ADDRSTRLEN];
		int fd = socket(ups[i].addr.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) die("upstream socket: %s", strerror(errno));
		if (connect(fd, &ups[i].addr.sa, ups[i].len) < 0) {
			inet_ntop(ups[i].addr.sa.sa_family,
			          ups[i].addr.sa.sa_family == AF_INET ? (void *)&ups[i].addr.in.sin_addr
			                                              : (void *)&ups[i].addr.in6.sin6_addr,
			          shown, sizeof(shown));
			fprintf(stderr, "tsswarm-resolver: warning: upstream %s left out: %s\n", shown,
			        strerror(errno));
			close(fd);
			continue;
		}
		int rcvbuf = 1 << 20; /* a burst of forwards comes back as a burst of replies */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		ups[usable] = ups[i];
		ups[usable++].fd = fd;
	}
	nups = usable;
}

/* Enters the sandbox's namespace and binds UDP and TCP there. */
static void listen_in(const char *netns, const char *listen_on, const addr_t *listen_addr, socklen_t listen_len)
{
	int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) die("--netns %s: %s", netns, strerror(errno));
	if (setns(nsfd, CLONE_NEWNET) < 0) die("--netns %s: setns: %s", netns, strerror(errno));
	close(nsfd);

	int one = 1;
	int family = listen_addr->sa.sa_family;
	int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
	int freebind = family == AF_INET ? IP_FREEBIND : IPV6_FREEBIND;
	udp_fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	tcp_fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (udp_fd < 0 || tcp_fd < 0) die("socket: %s", strerror(errno));
	/* FREEBIND: the sandbox's address may be configured just after the resolver starts */
	setsockopt(udp_fd, level, freebind, &one, sizeof(one));
	setsockopt(tcp_fd, level, freebind, &one, sizeof(one));
	setsockopt(tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Bursts of queries (every task of a service starting at once) must not overflow the default
	 * ~200 kB buffer, ~270 small datagrams; as root the rmem_max cap does not apply. Only used
	 * buffer costs memory. */
	int rcvbuf = 2 << 20;
	if (setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(udp_fd, &listen_addr->sa, listen_len) < 0)
		die("--listen %s: bind udp: %s", listen_on, strerror(errno));
	if (bind(tcp_fd, &listen_addr->sa, listen_len) < 0 || listen(tcp_fd, 64) < 0)
		die("--listen %s: bind tcp: %s", listen_on, strerror(errno));
}

/* The poll loop, until EOF on stdin. */
static void serve(void)
{
	enum { P_STDIN, P_UDP, P_TCP, P_UPS };
	struct pollfd pfd[P_UPS + MAX_UPSTREAMS + MAX_TCP];
	int conn_at[MAX_TCP];
	for (;;) {
		pfd[P_STDIN] = (struct pollfd){ .fd = 0, .events = POLLIN };
		pfd[P_UDP] = (struct pollfd){ .fd = udp_fd, .events = POLLIN };
		pfd[P_TCP] = (struct pollfd){ .fd = tcp_fd, .events = POLLIN };
		nfds_t n = P_UPS;
		for (size_t i = 0; i < nups; i++) pfd[n++] = (struct pollfd){ .fd = ups[i].fd, .events = POLLIN };
		int64_t now = now_ms(), wake = next_due;
		size_t nconn = 0;
		for (size_t i = 0; i < MAX_TCP; i++) {
			struct tcp_conn *c = &conns[i];
			if (c->fd < 0) continue;
			/* a client that does not read its replies gets no more answers until it does */
			short ev = (c->outlen < 65536 ? POLLIN : 0) | (c->out ? POLLOUT : 0);
			conn_at[nconn++] = i;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
			if (c->last + TCP_IDLE_MS < wake) wake = c->last + TCP_IDLE_MS;
		}
		int timeout = wake == INT64_MAX ? -1 : wake <= now ? 0 : (int)(wake - now);
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR) continue;
			die("poll: %s", strerror(errno));
		}
		now = now_ms();
		if (pfd[P_STDIN].revents && !read_commands()) return;
		if (pfd[P_UDP].revents) read_udp(now);
		for (size_t i = 0; i < nups; i++)
			if (pfd[P_UPS + i].revents) read_upstream(i, now);
		for (size_t k = 0; k < nconn; k++) {
			struct tcp_conn *c = &conns[conn_at[k]];
			short re = pfd[P_UPS + nups + k].revents;
			if (c->fd < 0 || c->fd != pfd[P_UPS + nups + k].fd) continue;
			if (re & POLLOUT) tcp_writable(c, now);
			if (c->fd >= 0 && (re & (POLLIN | POLLHUP | POLLERR))) tcp_readable(c, now);
			if (c->fd >= 0 && c->last + TCP_IDLE_MS <= now) /* idle, or not reading its replies */
				tcp_close(c);
		}
		if (pfd[P_TCP].revents) accept_tcp(now);
		expire_pending(now);
	}
}

/* stdin closed: the daemon is gone or done with this network. */
static void close_all(void)
{
	for (size_t i = 0; i < MAX_TCP; i++)
		if (conns[i].fd >= 0) tcp_close(&conns[i]);
	for (size_t i = 0; i < nups; i++) close(ups[i].fd);
	close(udp_fd);
	close(tcp_fd);
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *listen_on = NULL, *conf = NULL;
	addr_t listen_addr;
	socklen_t listen_len;

	for (int i = 1; i < argc; i++) {
		const char *flag = argv[i];
		if (i + 1 >= argc) usage();
		const char *val = argv[++i];
		if (!strcmp(flag, "--netns")) {
			netns = val;
		} else if (!strcmp(flag, "--listen")) {
			listen_on = val;
			if (parse_endpoint(val, &listen_addr, &listen_len) < 0) die("--listen %s: not IP[:PORT]", val);
		} else if (!strcmp(flag, "--upstream")) {
			if (nups == MAX_UPSTREAMS) die("at most %d --upstream", MAX_UPSTREAMS);
			if (parse_endpoint(val, &ups[nups].addr, &ups[nups].len) < 0)
				die("--upstream %s: not IP:PORT", val);
			nups++;
		} else if (!strcmp(flag, "--upstream-conf")) {
			conf = val;
		} else {
			die("unknown flag %s", flag);
		}
	}
	if (!netns || !listen_on) usage();
	if (!nups) upstreams_from_conf(conf ? conf : "/etc/resolv.conf", conf != NULL);

	signal(SIGPIPE, SIG_IGN);
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || !rng_state)
		rng_state = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ULL | 1;

	open_upstreams();
	listen_in(netns, listen_on, &listen_addr, listen_len);
	pending_init();
	for (size_t i = 0; i < MAX_TCP; i++) conns[i].fd = -1;
	serve();
	close_all();
	return 0;
}
