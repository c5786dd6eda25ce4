/* What every part of tsswarm-resolver uses: addresses, errors, the clock, random ids, hashing. */
#ifndef TSS_RESOLVER_H
#define TSS_RESOLVER_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Packets handled per socket per loop turn, so that one busy socket cannot starve the others. */
#define BURST 64

typedef union {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
} addr_t;

/* Prints "tsswarm-resolver: " and the message on stderr, exits 1. */
void die(const char *fmt, ...);
int64_t now_ms(void);

extern uint64_t rng_state; /* seeded by main */
uint32_t rng(void);

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline uint64_t fnv(uint64_t h, const void *data, size_t n)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL
#endif
