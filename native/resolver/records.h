/* The names the daemon gave us and their A records: a hash table, grown as it fills. */
#ifndef TSS_RECORDS_H
#define TSS_RECORDS_H
#include <stddef.h>
#include <stdint.h>

struct record {
	struct record *next;
	uint64_t hash;
	uint32_t count, rotation;
	uint32_t *addrs; /* network order */
	char name[];     /* lowercase, no trailing dot */
};

/* NAME of LEN bytes, lowercase without a trailing dot; NULL if unknown. */
struct record *record_find(const char *name, size_t len);
/* Replaces NAME's addresses with ADDRS (malloc'd, now owned by the table), rotation reset. */
void record_set(const char *name, size_t len, uint32_t *addrs, uint32_t count);
/* Removes NAME; nothing if unknown. */
void record_del(const char *name, size_t len);
void records_clear(void);
#endif
