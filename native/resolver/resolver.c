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
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DNS_HEADER 12
#define DNS_PORT 53
#define MAX_UPSTREAMS 8
/* Concurrent forwards in flight; beyond that a query is answered SERVFAIL at once. */
#define MAX_PENDING 1024
#define FORWARD_TIMEOUT_MS 2000
/* A query is a question plus an OPT record: anything longer is not one we serve. */
#define MAX_QUERY 512
#define MAX_TCP 32
#define TCP_IDLE_MS 10000
#define TCP_MAX_BACKLOG (256 * 1024) /* replies a TCP client has not read yet */
/* The most A records one reply over TCP (64 KiB) can carry, with room for the question. */
#define MAX_ADDRS 4000
#define MAX_LINE (128 * 1024)
#define EDNS_SIZE 1232 /* what we advertise: fits any path MTU without fragmenting */
/* Packets handled per socket per loop turn, so that one busy socket cannot starve the others. */
#define BURST 64

#define TYPE_A 1
#define TYPE_OPT 41
#define CLASS_IN 1
#define RCODE_FORMERR 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_NOTIMP 4

typedef union {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
} addr_t;

static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("tsswarm-resolver: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_state;
static uint32_t rng(void)
{
	/* xorshift64*: the forward ids only need to be unpredictable from outside, not cryptographic */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* IPv4 "A.B.C.D[:PORT]", IPv6 "ADDR" or "[ADDR]:PORT". */
static int parse_endpoint(const char *s, addr_t *a, socklen_t *alen)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *port = NULL;
	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || (size_t)(close - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, close - s - 1);
		host[close - s - 1] = 0;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return -1;
	} else {
		const char *colon = strchr(s, ':');
		if (strlen(s) >= sizeof(host))
			return -1;
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
		if (!*port || *end || errno || p < 1 || p > 65535)
			return -1;
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

/* ---------------------------------------------------------------- the records */

struct record {
	struct record *next;
	uint64_t hash;
	uint32_t count, rotation;
	uint32_t *addrs; /* network order */
	char name[];     /* lowercase, no trailing dot */
};

static struct record **buckets;
static size_t nbuckets, nrecords;

static struct record **record_slot(const char *name, size_t len, uint64_t hash)
{
	struct record **r = &buckets[hash & (nbuckets - 1)];
	for (; *r; r = &(*r)->next)
		if ((*r)->hash == hash && !memcmp((*r)->name, name, len) && !(*r)->name[len])
			return r;
	return r;
}

static struct record *record_find(const char *name, size_t len)
{
	if (!nrecords)
		return NULL;
	return *record_slot(name, len, fnv(FNV_INIT, name, len));
}

static void records_grow(void)
{
	size_t n = nbuckets ? nbuckets * 2 : 64;
	struct record **b = calloc(n, sizeof(*b));
	if (!b)
		die("out of memory");
	for (size_t i = 0; i < nbuckets; i++)
		for (struct record *r = buckets[i], *next; r; r = next) {
			next = r->next;
			r->next = b[r->hash & (n - 1)];
			b[r->hash & (n - 1)] = r;
		}
	free(buckets);
	buckets = b;
	nbuckets = n;
}

static void record_free(struct record *r)
{
	free(r->addrs);
	free(r);
}

/* ---------------------------------------------------------------- commands on stdin */

static void reply_line(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* stdout is a pipe to the daemon; if it went away, stdin's EOF ends us soon */
	for (int off = 0; off < n;) {
		ssize_t w = write(1, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

/* Lowercases NAME in place and drops one trailing dot. Names are service, task and tasks.SERVICE
 * names: letters, digits, '-' and '_' in dot-separated labels of 1..63, 253 at most in all. */
static const char *normalize_name(char *name, size_t *len)
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		name[--n] = 0;
	if (!n || n > 253)
		return "a name has 1 to 253 characters";
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = name[i];
		if (c == '.') {
			if (!label)
				return "empty label";
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return "a name has only letters, digits, '-', '_' and dots";
		if (++label > 63)
			return "a label has at most 63 characters";
		name[i] = tolower(c);
	}
	if (!label)
		return "empty label";
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
	if (!copy)
		die("out of memory");
	memcpy(copy, addrs, count * sizeof(*copy));

	if (nrecords >= nbuckets)
		records_grow();
	uint64_t hash = fnv(FNV_INIT, argv[1], len);
	struct record **slot = record_slot(argv[1], len, hash);
	struct record *r = *slot;
	if (!r) {
		r = calloc(1, sizeof(*r) + len + 1);
		if (!r)
			die("out of memory");
		memcpy(r->name, argv[1], len);
		r->hash = hash;
		*slot = r;
		nrecords++;
	}
	free(r->addrs);
	r->addrs = copy;
	r->count = count;
	r->rotation = 0;
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
	if (!nrecords)
		return;
	struct record **slot = record_slot(argv[1], len, fnv(FNV_INIT, argv[1], len));
	struct record *r = *slot;
	if (r) {
		*slot = r->next;
		record_free(r);
		nrecords--;
	}
}

static void cmd_clear(void)
{
	for (size_t i = 0; i < nbuckets; i++)
		for (struct record *r = buckets[i], *next; r; r = next) {
			next = r->next;
			record_free(r);
		}
	if (nbuckets)
		memset(buckets, 0, nbuckets * sizeof(*buckets));
	nrecords = 0;
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
	if (!argc)
		return;
	if (!strcmp(argv[0], "set"))
		cmd_set(argv, argc);
	else if (!strcmp(argv[0], "del"))
		cmd_del(argv, argc);
	else if (!strcmp(argv[0], "clear") && argc == 1)
		cmd_clear();
	else if (!strcmp(argv[0], "sync") && argc == 1)
		reply_line("ok");
	else
		reply_line("error unknown command: %.64s (set NAME IP..., del NAME, clear, sync)", argv[0]);
}

static char line_buf[MAX_LINE];
static size_t line_len;
static int line_overflow; /* discarding the rest of a line that was too long */

/* Returns 0 on EOF. */
static int read_commands(void)
{
	ssize_t n = read(0, line_buf + line_len, sizeof(line_buf) - line_len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return 0;
	size_t end = line_len + n, start = 0;
	for (size_t i = line_len; i < end; i++) {
		if (line_buf[i] != '\n')
			continue;
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

/* ---------------------------------------------------------------- DNS wire format */

struct query {
	uint16_t id, flags, qtype, qclass;
	size_t qend;      /* offset just past the question */
	int local;        /* the name can be one of ours (no '.' or odd byte inside a label) */
	int edns;         /* the query carries an OPT record */
	size_t limit;     /* the largest reply the client accepts */
	size_t namelen;
	char name[256];   /* lowercase, dotted, no trailing dot */
};

/*
 * Reads the name at *off into NAME (lowercase, dotted; "" for the root) and moves *off past it.
 * A compression pointer must point into the packet after the header and strictly before the
 * start of the run it ends, so every jump goes backwards: no loop, however the packet is built.
 */
static int read_name(const uint8_t *p, size_t len, size_t *off, char *name, size_t *namelen, int *local)
{
	size_t pos = *off, run = *off, n = 0, end = 0;
	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t c = p[pos];
		if (c == 0) {
			if (!end)
				end = pos + 1;
			break;
		}
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return -1;
			size_t target = (size_t)(c & 0x3f) << 8 | p[pos + 1];
			if (!end)
				end = pos + 2;
			if (target < DNS_HEADER || target >= run)
				return -1;
			run = pos = target;
			continue;
		}
		if (c & 0xc0)
			return -1; /* the obsolete extended label types */
		if (pos + 1 + c > len || n + (n ? 1 : 0) + c > 253)
			return -1;
		if (n)
			name[n++] = '.';
		for (size_t i = 0; i < c; i++) {
			uint8_t b = p[pos + 1 + i];
			if (b == '.' || b <= ' ' || b >= 0x7f)
				*local = 0;
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
static uint64_t question_hash(const struct query *q)
{
	uint8_t tc[4];
	put16(tc, q->qtype);
	put16(tc + 2, q->qclass);
	return fnv(fnv(FNV_INIT, q->name, q->namelen), tc, 4);
}

/* Parses a packet's header and its single question; for a query, also finds an OPT record. */
static int parse_message(const uint8_t *p, size_t len, struct query *q, int find_opt)
{
	if (len < DNS_HEADER)
		return -1;
	q->id = get16(p);
	q->flags = get16(p + 2);
	if (get16(p + 4) != 1)
		return -1;
	size_t off = DNS_HEADER;
	q->local = 1;
	if (read_name(p, len, &off, q->name, &q->namelen, &q->local) < 0 || off + 4 > len)
		return -1;
	q->qtype = get16(p + off);
	q->qclass = get16(p + off + 2);
	q->qend = off + 4;
	q->edns = 0;
	q->limit = 512;
	if (!find_opt)
		return 0;
	/* Skip whatever else a query carries up to its OPT record; a malformed tail only means no EDNS. */
	unsigned rrs = get16(p + 6) + get16(p + 8) + get16(p + 10);
	off = q->qend;
	for (unsigned i = 0; i < rrs; i++) {
		char skip[256];
		size_t skiplen;
		int dummy = 1;
		if (read_name(p, len, &off, skip, &skiplen, &dummy) < 0 || off + 10 > len)
			break;
		uint16_t type = get16(p + off), class = get16(p + off + 2), rdlen = get16(p + off + 8);
		if (off + 10 + rdlen > len)
			break;
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
static uint8_t rx_buf[2 + 65536], tx_buf[2 + 65536];
#define RX (rx_buf + 2)
#define RX_SIZE 65536
#define TXP (tx_buf + 2)

static size_t nups;

/*
 * A reply we make ourselves: the query's id and question (copied as sent: a question starts at
 * offset 12 in both, so even a compression pointer inside it stays valid), then ADDRS rotated.
 */
static size_t build_reply(const uint8_t *query, const struct query *q, size_t limit, int rcode, int authoritative,
			  struct record *r)
{
	uint8_t *o = TXP;
	size_t qlen = q->qend - DNS_HEADER;
	size_t len = DNS_HEADER + qlen, optlen = q->edns ? 11 : 0;
	uint16_t flags = 0x8000 | (q->flags & 0x0100) | (q->flags & 0x0010) /* RD, CD */ | (nups ? 0x0080 : 0) /* RA */ |
			 (authoritative ? 0x0400 : 0) | rcode;
	unsigned answers = 0;
	if (r) {
		size_t room = limit > len + optlen ? (limit - len - optlen) / 16 : 0;
		answers = r->count <= room ? r->count : room;
		if (answers < r->count)
			flags |= 0x0200; /* TC: the client retries over TCP, where all of them fit */
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

/* ---------------------------------------------------------------- clients: UDP and TCP */

static int udp_fd = -1, tcp_fd = -1;

struct tcp_conn {
	int fd;
	uint32_t gen;
	int64_t last;
	size_t inlen;
	uint8_t in[2 + MAX_QUERY];
	uint8_t *out; /* what a short write left, sent when the socket is writable again */
	size_t outlen, outoff;
};
static struct tcp_conn conns[MAX_TCP];
static uint32_t conn_gen;

static void tcp_close(struct tcp_conn *c)
{
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->outlen = c->outoff = c->inlen = 0;
}

/* Sends MSG (which sits right after two spare bytes) with its length prefix. */
static void tcp_send(struct tcp_conn *c, uint8_t *msg, size_t len)
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
		if (sent == len)
			return;
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

static void send_udp(const uint8_t *msg, size_t len, const addr_t *to, socklen_t tolen)
{
	/* a full socket buffer drops the reply, as the network would; the client retries */
	sendto(udp_fd, msg, len, MSG_DONTWAIT, &to->sa, tolen);
}

/* ---------------------------------------------------------------- forwarding */

static struct upstream {
	int fd;
	addr_t addr;
	socklen_t len;
} ups[MAX_UPSTREAMS];

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
static int64_t next_due = INT64_MAX;

static void pending_init(void)
{
	for (size_t i = 0; i < MAX_PENDING; i++)
		free_slots[nfree++] = MAX_PENDING - 1 - i;
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
	if (c->fd >= 0 && c->gen == f->gen)
		tcp_send(c, msg, len);
}

static void answer_servfail(struct pending *f)
{
	struct query q;
	put16(f->pkt, f->client_id);
	if (parse_message(f->pkt, f->len, &q, 1) < 0)
		return;
	size_t len = build_reply(f->pkt, &q, q.limit, RCODE_SERVFAIL, 0, NULL);
	deliver(f, TXP, len);
}

/* Sends the query to the next upstream that takes it. Returns -1 when none is left. */
static int forward_next(struct pending *f)
{
	while (f->next_up < nups) {
		struct upstream *u = &ups[f->next_up++];
		if (send(u->fd, f->pkt, f->len, MSG_DONTWAIT) == f->len)
			return 0;
	}
	return -1;
}

static void schedule(struct pending *f, int64_t now)
{
	/* the two seconds are shared among the upstreams, tried one after the other */
	f->due = f->next_up >= nups ? f->deadline : now + FORWARD_TIMEOUT_MS / (int64_t)nups;
	if (f->due > f->deadline)
		f->due = f->deadline;
	if (f->due < next_due)
		next_due = f->due;
}

static void forward(const uint8_t *pkt, size_t len, const struct query *q, const addr_t *client, socklen_t client_len,
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
	do
		id = rng();
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
	if (len < DNS_HEADER || !(msg[2] & 0x80))
		return;
	uint16_t slot = id_slot[get16(msg)];
	if (!slot)
		return; /* late (we already answered SERVFAIL) or not ours */
	struct pending *f = &pending[slot - 1];
	if (upstream >= f->next_up)
		return; /* we never asked that one */
	/* the question must be the one asked; a reply without one is only accepted as an error */
	if (parse_message(msg, len, &q, 0) == 0) {
		if (question_hash(&q) != f->qhash)
			return;
	} else if (len < DNS_HEADER || get16(msg + 4) != 0 || (msg[3] & 0x0f) == 0) {
		return;
	}
	put16(msg, f->client_id);
	deliver(f, msg, len);
	pending_release(f);
}

static void expire_pending(int64_t now)
{
	if (now < next_due)
		return;
	next_due = INT64_MAX;
	size_t seen = 0;
	for (size_t i = 0; i < MAX_PENDING && seen < npending; i++) {
		struct pending *f = &pending[i];
		if (!f->used)
			continue;
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
		if (f->due < next_due)
			next_due = f->due;
	}
}

/* ---------------------------------------------------------------- queries */

/* One query from a client. C is its TCP connection, or NULL for UDP (then CLIENT is its address). */
static void handle_query(uint8_t *pkt, size_t len, const addr_t *client, socklen_t client_len, struct tcp_conn *c,
			 int64_t now)
{
	struct query q;
	if (len < DNS_HEADER || (pkt[2] & 0x80))
		return; /* a response sent to us: never answer one, or two resolvers could ping-pong */
	if (parse_message(pkt, len, &q, 1) < 0)
		return;
	size_t limit = c ? 65535 : q.limit;
	size_t n;
	int opcode = (q.flags >> 11) & 0x0f;
	if (opcode != 0) {
		n = build_reply(pkt, &q, limit, RCODE_NOTIMP, 0, NULL);
	} else if (len > MAX_QUERY) {
		n = build_reply(pkt, &q, limit, RCODE_FORMERR, 0, NULL);
	} else {
		struct record *r = q.local ? record_find(q.name, q.namelen) : NULL;
		if (r) {
			/* a known name: its A records; any other type exists but is empty (NODATA) */
			int a = q.qtype == TYPE_A && q.qclass == CLASS_IN;
			n = build_reply(pkt, &q, limit, 0, 1, a ? r : NULL);
		} else if (nups) {
			forward(pkt, len, &q, client, client_len, c, now);
			return;
		} else {
			n = build_reply(pkt, &q, limit, RCODE_NXDOMAIN, 0, NULL);
		}
	}
	if (c)
		tcp_send(c, TXP, n);
	else
		send_udp(TXP, n, client, client_len);
}

static void read_udp(int64_t now)
{
	for (int i = 0; i < BURST; i++) {
		addr_t from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(udp_fd, RX, RX_SIZE, MSG_DONTWAIT, &from.sa, &fromlen);
		if (n < 0)
			return;
		handle_query(RX, n, &from, fromlen, NULL, now);
	}
}

/* The upstream said port unreachable: whatever waits on it moves to the next one now. */
static void upstream_refused(size_t u, int64_t now)
{
	size_t seen = 0;
	for (size_t i = 0; i < MAX_PENDING && seen < npending; i++) {
		struct pending *f = &pending[i];
		if (!f->used)
			continue;
		seen++;
		if (f->next_up == u + 1 && f->next_up < nups) {
			f->due = now;
			next_due = now;
		}
	}
}

static void read_upstream(size_t u, int64_t now)
{
	for (int i = 0; i < BURST; i++) {
		ssize_t n = recv(ups[u].fd, RX, RX_SIZE, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* an ICMP error is not tied to one query; the last one is whoever refused */
			if (errno == ECONNREFUSED)
				upstream_refused(u, now);
			continue;
		}
		upstream_reply(u, RX, n);
	}
}

static void accept_tcp(int64_t now)
{
	for (int i = 0; i < BURST; i++) {
		int fd = accept4(tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
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

static void tcp_readable(struct tcp_conn *c, int64_t now)
{
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			tcp_close(c);
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
		if (c->inlen < 2 + mlen)
			return;
		/* copied out, so that the connection's buffer can take the next one */
		memcpy(RX, c->in + 2, mlen);
		memmove(c->in, c->in + 2 + mlen, c->inlen - 2 - mlen);
		c->inlen -= 2 + mlen;
		handle_query(RX, mlen, NULL, 0, c, now);
	}
}

static void tcp_writable(struct tcp_conn *c, int64_t now)
{
	ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0) {
		if (errno != EAGAIN && errno != EINTR)
			tcp_close(c);
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

/* ---------------------------------------------------------------- setup */

static void upstreams_from_conf(const char *path, int required)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		if (required)
			die("--upstream-conf %s: %s", path, strerror(errno));
		return; /* no resolv.conf: no upstream, unknown names are NXDOMAIN */
	}
	char line[512];
	while (fgets(line, sizeof(line), f) && nups < MAX_UPSTREAMS) {
		char word[16], host[80];
		if (sscanf(line, " %15s %79s", word, host) != 2 || strcmp(word, "nameserver"))
			continue;
		char *scope = strchr(host, '%');
		if (scope)
			*scope = 0; /* a link-local scope: not meaningful to us */
		char endpoint[96];
		if (strchr(host, ':'))
			snprintf(endpoint, sizeof(endpoint), "[%s]:53", host);
		else
			snprintf(endpoint, sizeof(endpoint), "%s:53", host);
		if (parse_endpoint(endpoint, &ups[nups].addr, &ups[nups].len) == 0)
			nups++;
	}
	fclose(f);
}

static void usage(void)
{
	die("usage: tsswarm-resolver --netns PATH --listen IP[:PORT] [--upstream IP:PORT ...] [--upstream-conf FILE]");
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *listen_on = NULL, *conf = NULL;
	addr_t listen_addr;
	socklen_t listen_len;

	for (int i = 1; i < argc; i++) {
		const char *flag = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *val = argv[++i];
		if (!strcmp(flag, "--netns")) {
			netns = val;
		} else if (!strcmp(flag, "--listen")) {
			listen_on = val;
			if (parse_endpoint(val, &listen_addr, &listen_len) < 0)
				die("--listen %s: not IP[:PORT]", val);
		} else if (!strcmp(flag, "--upstream")) {
			if (nups == MAX_UPSTREAMS)
				die("at most %d --upstream", MAX_UPSTREAMS);
			if (parse_endpoint(val, &ups[nups].addr, &ups[nups].len) < 0)
				die("--upstream %s: not IP:PORT", val);
			nups++;
		} else if (!strcmp(flag, "--upstream-conf")) {
			conf = val;
		} else {
			die("unknown flag %s", flag);
		}
	}
	if (!netns || !listen_on)
		usage();
	if (!nups)
		upstreams_from_conf(conf ? conf : "/etc/resolv.conf", conf != NULL);

	signal(SIGPIPE, SIG_IGN);
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || !rng_state)
		rng_state = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ULL | 1;

	/* In the daemon's namespace: the sockets that reach the host's resolvers. Connected, so the
	 * kernel drops datagrams from anyone but that upstream. One this host has no route to (an IPv6
	 * nameserver on an IPv4-only host) is left out, with a warning: the others still serve. */
	size_t usable = 0;
	for (size_t i = 0; i < nups; i++) {
		char shown[INET6_ADDRSTRLEN];
		int fd = socket(ups[i].addr.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("upstream socket: %s", strerror(errno));
		if (connect(fd, &ups[i].addr.sa, ups[i].len) < 0) {
			inet_ntop(ups[i].addr.sa.sa_family,
				  ups[i].addr.sa.sa_family == AF_INET ? (void *)&ups[i].addr.in.sin_addr
								      : (void *)&ups[i].addr.in6.sin6_addr,
				  shown, sizeof(shown));
			fprintf(stderr, "tsswarm-resolver: warning: upstream %s left out: %s\n", shown, strerror(errno));
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

	int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		die("--netns %s: %s", netns, strerror(errno));
	if (setns(nsfd, CLONE_NEWNET) < 0)
		die("--netns %s: setns: %s", netns, strerror(errno));
	close(nsfd);

	int one = 1;
	int family = listen_addr.sa.sa_family;
	int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
	int freebind = family == AF_INET ? IP_FREEBIND : IPV6_FREEBIND;
	udp_fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	tcp_fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (udp_fd < 0 || tcp_fd < 0)
		die("socket: %s", strerror(errno));
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
	if (bind(udp_fd, &listen_addr.sa, listen_len) < 0)
		die("--listen %s: bind udp: %s", listen_on, strerror(errno));
	if (bind(tcp_fd, &listen_addr.sa, listen_len) < 0 || listen(tcp_fd, 64) < 0)
		die("--listen %s: bind tcp: %s", listen_on, strerror(errno));

	pending_init();
	for (size_t i = 0; i < MAX_TCP; i++)
		conns[i].fd = -1;

	enum { P_STDIN, P_UDP, P_TCP, P_UPS };
	struct pollfd pfd[P_UPS + MAX_UPSTREAMS + MAX_TCP];
	int conn_at[MAX_TCP];
	for (;;) {
		pfd[P_STDIN] = (struct pollfd){ .fd = 0, .events = POLLIN };
		pfd[P_UDP] = (struct pollfd){ .fd = udp_fd, .events = POLLIN };
		pfd[P_TCP] = (struct pollfd){ .fd = tcp_fd, .events = POLLIN };
		nfds_t n = P_UPS;
		for (size_t i = 0; i < nups; i++)
			pfd[n++] = (struct pollfd){ .fd = ups[i].fd, .events = POLLIN };
		int64_t now = now_ms(), wake = next_due;
		size_t nconn = 0;
		for (size_t i = 0; i < MAX_TCP; i++) {
			struct tcp_conn *c = &conns[i];
			if (c->fd < 0)
				continue;
			/* a client that does not read its replies gets no more answers until it does */
			short ev = (c->outlen < 65536 ? POLLIN : 0) | (c->out ? POLLOUT : 0);
			conn_at[nconn++] = i;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
			if (c->last + TCP_IDLE_MS < wake)
				wake = c->last + TCP_IDLE_MS;
		}
		int timeout = wake == INT64_MAX ? -1 : wake <= now ? 0 : (int)(wake - now);
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		now = now_ms();
		if (pfd[P_STDIN].revents && !read_commands())
			break;
		if (pfd[P_UDP].revents)
			read_udp(now);
		for (size_t i = 0; i < nups; i++)
			if (pfd[P_UPS + i].revents)
				read_upstream(i, now);
		for (size_t k = 0; k < nconn; k++) {
			struct tcp_conn *c = &conns[conn_at[k]];
			short re = pfd[P_UPS + nups + k].revents;
			if (c->fd < 0 || c->fd != pfd[P_UPS + nups + k].fd)
				continue;
			if (re & POLLOUT)
				tcp_writable(c, now);
			if (c->fd >= 0 && (re & (POLLIN | POLLHUP | POLLERR)))
				tcp_readable(c, now);
			if (c->fd >= 0 && c->last + TCP_IDLE_MS <= now) /* idle, or not reading its replies */
				tcp_close(c);
		}
		if (pfd[P_TCP].revents)
			accept_tcp(now);
		expire_pending(now);
	}

	/* stdin closed: the daemon is gone or done with this network */
	for (size_t i = 0; i < MAX_TCP; i++)
		if (conns[i].fd >= 0)
			tcp_close(&conns[i]);
	for (size_t i = 0; i < nups; i++)
		close(ups[i].fd);
	close(udp_fd);
	close(tcp_fd);
	return 0;
}
