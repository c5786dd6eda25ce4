/* Names we do not know: relayed to the upstreams, one after the other, answered SERVFAIL after 2 s. */
#ifndef TSS_FORWARD_H
#define TSS_FORWARD_H
#include "dns.h"
#include "resolver.h"
#include <stddef.h>
#include <stdint.h>

#define MAX_UPSTREAMS 8

struct tcp_conn;

struct upstream {
	int fd;
	addr_t addr;
	socklen_t len;
};
/* The usable upstreams (main connects them), in the order they are tried. */
extern struct upstream ups[MAX_UPSTREAMS];
extern size_t nups;
/* The earliest time a forward in flight needs attention (INT64_MAX: none). */
extern int64_t next_due;

void pending_init(void);
/* Relays a query that is not ours. C is its TCP connection, or NULL for UDP (then CLIENT). */
void forward(const uint8_t *pkt, size_t len, const struct query *q, const addr_t *client, socklen_t client_len,
             struct tcp_conn *c, int64_t now);
/* Moves on, or gives up, the forwards that are due. */
void expire_pending(int64_t now);
/* Takes what upstream U's socket has: replies, or its port unreachable. */
void read_upstream(size_t u, int64_t now);
#endif
