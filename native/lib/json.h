/* A small, strict JSON parser (RFC 8259) and writer helpers: enough for config.json and state.json. */
#ifndef TSS_JSON_H
#define TSS_JSON_H
#include <stddef.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype t;
	char *key;   /* set when this value is an object member */
	char *s;     /* J_STR: NUL-terminated (embedded NULs are refused) */
	size_t len;  /* J_STR: byte length; J_ARR/J_OBJ: number of children */
	double n;    /* J_NUM */
	int b;       /* J_BOOL */
	int is_int;  /* J_NUM without fraction/exponent */
	long long i; /* J_NUM when is_int */
	struct jval *child, *next;
};

/* Parses text; on error returns NULL and writes "line L, column C: what" into err. */
struct jval *json_parse(const char *text, size_t len, char *err, size_t errlen);
struct jval *json_get(const struct jval *obj, const char *key);
const char *json_type_name(enum jtype t);

/* Appends the JSON encoding of s (quoted) to buf at *pos; returns -1 if it does not fit. */
int json_escape(char *buf, size_t cap, size_t *pos, const char *s, size_t n);
/* Serialises v compactly (used to copy annotations into state output). */
int json_write(char *buf, size_t cap, size_t *pos, const struct jval *v);
#endif
