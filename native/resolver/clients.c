#include "clients.h"
#include "query.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_MAX_BACKLOG (256 * 1024) /* replies a TCP client has not read yet */

int udp_fd = -1, tcp_fd = -1;

struct tcp_conn conns[MAX_TCP];
static uint32_t conn_gen;

void tcp_close(struct tcp_conn *c)
{
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->outlen = c->outoff = c->inlen = 0;
}

/* Sends MSG (which sits right after two spare bytes) with its length prefix. */
void tcp_send(struct tcp_conn *c, uint8_t *msg, size_t len)
{
	uint8_t *framed = msg - 2;
	put16(framed, (uint16_t)len);
	len += 2;
	size_t sent = 0;
	if (!c->out) {
		ssize_t w = send(c->fd, framed, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			tcp_close(c);
			return;
		}
		sent = w > 0 ? (size_t)w : 0;
		if (sent == len) return;
	}
	/* The slow path: the client reads slower than it asks. Keep the rest; reading from it stops
	 * past 64 KiB (see the poll), and one that still has more coming than it reads is dropped. */
	uint8_t *grown = c->outlen + len - sent > TCP_MAX_BACKLOG ? NULL : realloc(c->out, c->outlen + len - sent);
	if (!grown) {
		tcp_close(c);
		return;
	}
	c->out = grown;
	memcpy(c->out + c->outlen, framed + sent, len - sent);
	c->outlen += len - sent;
}

void send_udp(const uint8_t *msg, size_t len, const addr_t *to, socklen_t tolen)
{
	/* a full socket buffer drops the reply, as the network would; the client retries */
	sendto(udp_fd, msg, len, MSG_DONTWAIT, &to->sa, tolen);
}

void read_udp(int64_t now)
{
	for (int i = 0; i < BURST; i++) {
		addr_t from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(udp_fd, RX, RX_SIZE, MSG_DONTWAIT, &from.sa, &fromlen);
		if (n < 0) return;
		handle_query(RX, n, &from, fromlen, NULL, now);
	}
}

void accept_tcp(int64_t now)
{
	for (int i = 0; i < BURST; i++) {
		int fd = accept4(tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) return;
		struct tcp_conn *c = NULL, *oldest = NULL;
		for (size_t k = 0; k < MAX_TCP && !c; k++) {
			if (conns[k].fd < 0)
				c = &conns[k];
			else if (!oldest || conns[k].last < oldest->last)
				oldest = &conns[k];
		}
		if (!c) {
			/* full: the connection idle the longest makes room (RFC 7766 lets a server close idle ones) */
			tcp_close(oldest);
			c = oldest;
		}
		c->fd = fd;
		c->gen = ++conn_gen;
		c->last = now;
	}
}

void tcp_readable(struct tcp_conn *c, int64_t now)
{
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) tcp_close(c);
		return;
	}
	c->last = now;
	c->inlen += n;
	/* several queries may arrive in one read (pipelining): serve each complete one */
	while (c->fd >= 0 && c->inlen >= 2) {
		size_t mlen = get16(c->in);
		if (mlen > MAX_QUERY) {
			tcp_close(c);
			return;
		}
		if (c->inlen < 2 + mlen) return;
		/* copied out, so that the connection's buffer can take the next one */
		memcpy(RX, c->in + 2, mlen);
		memmove(c->in, c->in + 2 + mlen, c->inlen - 2 - mlen);
		c->inlen -= 2 + mlen;
		handle_query(RX, mlen, NULL, 0, c, now);
	}
}

void tcp_writable(struct tcp_conn *c, int64_t now)
{
	ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0) {
		if (errno != EAGAIN && errno != EINTR) tcp_close(c);
		return;
	}
	c->last = now;
	c->outoff += w;
	if (c->outoff == c->outlen) {
		free(c->out);
		c->out = NULL;
		c->outlen = c->outoff = 0;
	}
}
