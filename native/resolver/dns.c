#include "dns.h"
#include "forward.h"
#include "resolver.h"
#include <string.h>

/*
 * Reads the name at *off into NAME (lowercase, dotted; "" for the root) and moves *off past it.
 * A compression pointer must point into the packet after the header and strictly before the
 * start of the run it ends, so every jump goes backwards: no loop, however the packet is built.
 */
static int read_name(const uint8_t *p, size_t len, size_t *off, char *name, size_t *namelen, int *local)
{
	size_t pos = *off, run = *off, n = 0, end = 0;
	for (;;) {
		if (pos >= len) return -1;
		uint8_t c = p[pos];
		if (c == 0) {
			if (!end) end = pos + 1;
			break;
		}
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len) return -1;
			size_t target = (size_t)(c & 0x3f) << 8 | p[pos + 1];
			if (!end) end = pos + 2;
			if (target < DNS_HEADER || target >= run) return -1;
			run = pos = target;
			continue;
		}
		if (c & 0xc0) return -1; /* the obsolete extended label types */
		if (pos + 1 + c > len || n + (n ? 1 : 0) + c > 253) return -1;
		if (n) name[n++] = '.';
		for (size_t i = 0; i < c; i++) {
			uint8_t b = p[pos + 1 + i];
			if (b == '.' || b <= ' ' || b >= 0x7f) *local = 0;
			name[n++] = (b >= 'A' && b <= 'Z') ? b + 32 : b;
		}
		pos += 1 + c;
	}
	name[n] = 0;
	*namelen = n;
	*off = end;
	return 0;
}

/* The question's identity, to match an upstream's reply with the query it answers. */
uint64_t question_hash(const struct query *q)
{
	uint8_t tc[4];
	put16(tc, q->qtype);
	put16(tc + 2, q->qclass);
	return fnv(fnv(FNV_INIT, q->name, q->namelen), tc, 4);
}

/* Parses a packet's header and its single question; for a query, also finds an OPT record. */
int parse_message(const uint8_t *p, size_t len, struct query *q, int find_opt)
{
	if (len < DNS_HEADER) return -1;
	q->id = get16(p);
	q->flags = get16(p + 2);
	if (get16(p + 4) != 1) return -1;
	size_t off = DNS_HEADER;
	q->local = 1;
	if (read_name(p, len, &off, q->name, &q->namelen, &q->local) < 0 || off + 4 > len) return -1;
	q->qtype = get16(p + off);
	q->qclass = get16(p + off + 2);
	q->qend = off + 4;
	q->edns = 0;
	q->limit = 512;
	if (!find_opt) return 0;
	/* Skip whatever else a query carries up to its OPT record; a malformed tail only means no EDNS. */
	unsigned rrs = get16(p + 6) + get16(p + 8) + get16(p + 10);
	off = q->qend;
	for (unsigned i = 0; i < rrs; i++) {
		char skip[256];
		size_t skiplen;
		int dummy = 1;
		if (read_name(p, len, &off, skip, &skiplen, &dummy) < 0 || off + 10 > len) break;
		uint16_t type = get16(p + off), class = get16(p + off + 2), rdlen = get16(p + off + 8);
		if (off + 10 + rdlen > len) break;
		if (type == TYPE_OPT && skiplen == 0) {
			q->edns = 1;
			q->limit = class < 512 ? 512 : class > EDNS_SIZE ? EDNS_SIZE : class;
			break;
		}
		off += 10 + rdlen;
	}
	return 0;
}

/* Two spare bytes in front of each: room for the length prefix when the message goes out over TCP. */
uint8_t rx_buf[2 + 65536], tx_buf[2 + 65536];

/*
 * A reply we make ourselves: the query's id and question (copied as sent: a question starts at
 * offset 12 in both, so even a compression pointer inside it stays valid), then ADDRS rotated.
 */
size_t build_reply(const uint8_t *query, const struct query *q, size_t limit, int rcode, int authoritative,
                   struct record *r)
{
	uint8_t *o = TXP;
	size_t qlen = q->qend - DNS_HEADER;
	size_t len = DNS_HEADER + qlen, optlen = q->edns ? 11 : 0;
	uint16_t flags = 0x8000 | (q->flags & 0x0100) | (q->flags & 0x0010) /* RD, CD */ |
	                 (nups ? 0x0080 : 0) /* RA */ | (authoritative ? 0x0400 : 0) | rcode;
	unsigned answers = 0;
	if (r) {
		size_t room = limit > len + optlen ? (limit - len - optlen) / 16 : 0;
		answers = r->count <= room ? r->count : room;
		if (answers < r->count) flags |= 0x0200; /* TC: the client retries over TCP, where all of them fit */
	}
	put16(o, q->id);
	put16(o + 2, flags);
	put16(o + 4, 1);
	put16(o + 6, answers);
	put16(o + 8, 0);
	put16(o + 10, optlen ? 1 : 0);
	memcpy(o + DNS_HEADER, query + DNS_HEADER, qlen);
	if (answers) {
		/* round robin: each query starts one address further */
		uint32_t start = r->rotation % r->count;
		r->rotation = start + 1;
		for (unsigned i = 0; i < answers; i++) {
			uint8_t *a = o + len;
			put16(a, 0xc000 | DNS_HEADER); /* the name: a pointer to the question's */
			put16(a + 2, TYPE_A);
			put16(a + 4, CLASS_IN);
			memset(a + 6, 0, 4); /* TTL 0: a task that moves must not be cached anywhere */
			put16(a + 10, 4);
			memcpy(a + 12, &r->addrs[(start + i) % r->count], 4);
			len += 16;
		}
	}
	if (optlen) {
		uint8_t *a = o + len;
		a[0] = 0;
		put16(a + 1, TYPE_OPT);
		put16(a + 3, EDNS_SIZE);
		memset(a + 5, 0, 6); /* extended rcode, version 0, no flags, no options */
		len += 11;
	}
	return len;
}
