#include "records.h"
#include "resolver.h"
#include <stdlib.h>
#include <string.h>

static struct record **buckets;
static size_t nbuckets, nrecords;

static struct record **record_slot(const char *name, size_t len, uint64_t hash)
{
	struct record **r = &buckets[hash & (nbuckets - 1)];
	for (; *r; r = &(*r)->next)
		if ((*r)->hash == hash && !memcmp((*r)->name, name, len) && !(*r)->name[len]) return r;
	return r;
}

struct record *record_find(const char *name, size_t len)
{
	if (!nrecords) return NULL;
	return *record_slot(name, len, fnv(FNV_INIT, name, len));
}

static void records_grow(void)
{
	size_t n = nbuckets ? nbuckets * 2 : 64;
	struct record **b = calloc(n, sizeof(*b));
	if (!b) die("out of memory");
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

void record_set(const char *name, size_t len, uint32_t *addrs, uint32_t count)
{
	if (nrecords >= nbuckets) records_grow();
	uint64_t hash = fnv(FNV_INIT, name, len);
	struct record **slot = record_slot(name, len, hash);
	struct record *r = *slot;
	if (!r) {
		r = calloc(1, sizeof(*r) + len + 1);
		if (!r) die("out of memory");
		memcpy(r->name, name, len);
		r->hash = hash;
		*slot = r;
		nrecords++;
	}
	free(r->addrs);
	r->addrs = addrs;
	r->count = count;
	r->rotation = 0;
}

void record_del(const char *name, size_t len)
{
	if (!nrecords) return;
	struct record **slot = record_slot(name, len, fnv(FNV_INIT, name, len));
	struct record *r = *slot;
	if (r) {
		*slot = r->next;
		record_free(r);
		nrecords--;
	}
}

void records_clear(void)
{
	for (size_t i = 0; i < nbuckets; i++)
		for (struct record *r = buckets[i], *next; r; r = next) {
			next = r->next;
			record_free(r);
		}
	if (nbuckets) memset(buckets, 0, nbuckets * sizeof(*buckets));
	nrecords = 0;
}
