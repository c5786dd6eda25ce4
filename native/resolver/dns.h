/* The DNS wire format: one question parsed out of a packet, the replies we make ourselves. */
#ifndef TSS_DNS_H
#define TSS_DNS_H
#include "records.h"
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER 12
/* A query is a question plus an OPT record: anything longer is not one we serve. */
#define MAX_QUERY 512
#define EDNS_SIZE 1232 /* what we advertise: fits any path MTU without fragmenting */

#define TYPE_A 1
#define TYPE_OPT 41
#define CLASS_IN 1
#define RCODE_FORMERR 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_NOTIMP 4

struct query {
	uint16_t id, flags, qtype, qclass;
	size_t qend;  /* offset just past the question */
	int local;    /* the name can be one of ours (no '.' or odd byte inside a label) */
	int edns;     /* the query carries an OPT record */
	size_t limit; /* the largest reply the client accepts */
	size_t namelen;
	char name[256]; /* lowercase, dotted, no trailing dot */
};

/* The question's identity, to match an upstream's reply with the query it answers. */
uint64_t question_hash(const struct query *q);
/* Parses a packet's header and its single question; for a query, also finds an OPT record. */
int parse_message(const uint8_t *p, size_t len, struct query *q, int find_opt);
/* Writes a reply to QUERY into TXP and returns its length (see dns.c). */
size_t build_reply(const uint8_t *query, const struct query *q, size_t limit, int rcode, int authoritative,
                   struct record *r);

/* Two spare bytes in front of each: room for the length prefix when the message goes out over TCP. */
extern uint8_t rx_buf[2 + 65536], tx_buf[2 + 65536];
#define RX (rx_buf + 2)
#define RX_SIZE 65536
#define TXP (tx_buf + 2)
#endif
