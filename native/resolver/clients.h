/* The clients: queries over UDP, and over TCP connections (length-prefixed, pipelined). */
#ifndef TSS_CLIENTS_H
#define TSS_CLIENTS_H
#include "dns.h"
#include "resolver.h"
#include <stddef.h>
#include <stdint.h>

#define MAX_TCP 32
#define TCP_IDLE_MS 10000

struct tcp_conn {
	int fd;
	uint32_t gen;
	int64_t last;
	size_t inlen;
	uint8_t in[2 + MAX_QUERY];
	uint8_t *out; /* what a short write left, sent when the socket is writable again */
	size_t outlen, outoff;
};
extern struct tcp_conn conns[MAX_TCP];
extern int udp_fd, tcp_fd;

void tcp_close(struct tcp_conn *c);
/* Sends MSG (which sits right after two spare bytes) with its length prefix. */
void tcp_send(struct tcp_conn *c, uint8_t *msg, size_t len);
void send_udp(const uint8_t *msg, size_t len, const addr_t *to, socklen_t tolen);

void read_udp(int64_t now);
void accept_tcp(int64_t now);
void tcp_readable(struct tcp_conn *c, int64_t now);
void tcp_writable(struct tcp_conn *c, int64_t now);
#endif
