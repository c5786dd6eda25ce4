#include "forward.h"
#include "clients.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* Concurrent forwards in flight; beyond that a query is answered SERVFAIL at once. */
#define MAX_PENDING 1024
#define FORWARD_TIMEOUT_MS 2000

struct upstream ups[MAX_UPSTREAMS];
size_t nups;

struct pending {
	int64_t due;      /* when to try the next upstream, or to give up */
	int64_t deadline; /* when to give up */
	uint64_t qhash;
	addr_t client;
	socklen_t client_len;
	int conn; /* -1: a UDP client; else the TCP connection (checked against conn_gen) */
	uint32_t gen;
	uint16_t client_id, up_id, len;
	uint8_t used, next_up;
	uint8_t pkt[MAX_QUERY]; /* the query, id rewritten: resent as is to the next upstream */
};
static struct pending pending[MAX_PENDING];
static uint16_t free_slots[MAX_PENDING];
static size_t nfree, npending;
/* upstream id → slot + 1; ids are random, so a reply cannot be forged without seeing the query */
static uint16_t id_slot[65536];
int64_t next_due = INT64_MAX;

void pending_init(void)
{
	for (size_t i = 0; i < MAX_PENDING; i++) free_slots[nfree++] = MAX_PENDING - 1 - i;
}

static void pending_release(struct pending *f)
{
	id_slot[f->up_id] = 0;
	f->used = 0;
	free_slots[nfree++] = f - pending;
	npending--;
}

static void deliver(struct pending *f, uint8_t *msg, size_t len)
{
	if (f->conn < 0) {
		send_udp(msg, len, &f->client, f->client_len);
		return;
	}
	struct tcp_conn *c = &conns[f->conn];
	if (c->fd >= 0 && c->gen == f->gen) tcp_send(c, msg, len);
}

static void answer_servfail(struct pending *f)
{
	struct query q;
	put16(f->pkt, f->client_id);
	if (parse_message(f->pkt, f->len, &q, 1) < 0) return;
	size_t len = build_reply(f->pkt, &q, q.limit, RCODE_SERVFAIL, 0, NULL);
	deliver(f, TXP, len);
}

/* Sends the query to the next upstream that takes it. Returns -1 when none is left. */
static int forward_next(struct pending *f)
{
	while (f->next_up < nups) {
		struct upstream *u = &ups[f->next_up++];
		if (send(u->fd, f->pkt, f->len, MSG_DONTWAIT) == f->len) return 0;
	}
	return -1;
}

static void schedule(struct pending *f, int64_t now)
{
	/* the two seconds are shared among the upstreams, tried one after the other */
	f->due = f->next_up >= nups ? f->deadline : now + FORWARD_TIMEOUT_MS / (int64_t)nups;
	if (f->due > f->deadline) f->due = f->deadline;
	if (f->due < next_due) next_due = f->due;
}

void forward(const uint8_t *pkt, size_t len, const struct query *q, const addr_t *client, socklen_t client_len,
             struct tcp_conn *c, int64_t now)
{
	if (!nfree) {
		size_t n = build_reply(pkt, q, c ? 65535 : q->limit, RCODE_SERVFAIL, 0, NULL);
		if (c)
			tcp_send(c, TXP, n);
		else
			send_udp(TXP, n, client, client_len);
		return;
	}
	struct pending *f = &pending[free_slots[--nfree]];
	npending++;
	f->used = 1;
	uint16_t id;
	do id = rng();
	while (id_slot[id]);
	id_slot[id] = f - pending + 1;
	f->up_id = id;
	f->client_id = q->id;
	f->qhash = question_hash(q);
	f->conn = c ? c - conns : -1;
	f->gen = c ? c->gen : 0;
	if (client) {
		f->client = *client;
		f->client_len = client_len;
	}
	memcpy(f->pkt, pkt, len);
	put16(f->pkt, id);
	f->len = len;
	f->next_up = 0;
	f->deadline = now + FORWARD_TIMEOUT_MS;
	if (forward_next(f) < 0) {
		answer_servfail(f);
		pending_release(f);
		return;
	}
	schedule(f, now);
}

static void upstream_reply(size_t upstream, uint8_t *msg, size_t len)
{
	struct query q;
	if (len < DNS_HEADER || !(msg[2] & 0x80)) return;
	uint16_t slot = id_slot[get16(msg)];
	if (!slot) return; /* late (we already answered SERVFAIL) or not ours */
	struct pending *f = &pending[slot - 1];
	if (upstream >= f->next_up) return; /* we never asked that one */
	/* the question must be the one asked; a reply without one is only accepted as an error */
	if (parse_message(msg, len, &q, 0) == 0) {
		if (question_hash(&q) != f->qhash) return;
	} else if (len < DNS_HEADER || get16(msg + 4) != 0 || (msg[3] & 0x0f) == 0) {
		return;
	}
	put16(msg, f->client_id);
	deliver(f, msg, len);
	pending_release(f);
}

void expire_pending(int64_t now)
{
	if (now < next_due) return;
	next_due = INT64_MAX;
	size_t seen = 0;
	for (size_t i = 0; i < MAX_PENDING && seen < npending; i++) {
		struct pending *f = &pending[i];
		if (!f->used) continue;
		seen++;
		if (now >= f->due) {
			if (now >= f->deadline || forward_next(f) < 0) {
				answer_servfail(f);
				pending_release(f);
				seen--;
				continue;
			}
			schedule(f, now);
		}
		if (f->due < next_due) next_due = f->due;
	}
}

/* The upstream said port unreachable: whatever waits on it moves to the next one now. */
static void upstream_refused(size_t u, int64_t now)
{
	size_t seen = 0;
	for (size_t i = 0; i < MAX_PENDING && seen < npending; i++) {
		struct pending *f = &pending[i];
		if (!f->used) continue;
		seen++;
		if (f->next_up == u + 1 && f->next_up < nups) {
			f->due = now;
			next_due = now;
		}
	}
}

void read_upstream(size_t u, int64_t now)
{
	for (int i = 0; i < BURST; i++) {
		ssize_t n = recv(ups[u].fd, RX, RX_SIZE, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) return;
			/* an ICMP error is not tied to one query; the last one is whoever refused */
			if (errno == ECONNREFUSED) upstream_refused(u, now);
			continue;
		}
		upstream_reply(u, RX, n);
	}
}
