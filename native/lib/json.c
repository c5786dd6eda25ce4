#include "json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* Depth cap keeps a hostile config.json from exhausting the stack. */
#define MAX_DEPTH 64

struct parser {
	const char *p, *start, *end;
	char *err;
	size_t errlen;
	int failed;
};

static void perr(struct parser *ps, const char *at, const char *what)
{
	if (ps->failed) return;
	ps->failed = 1;
	int line = 1, col = 1;
	for (const char *q = ps->start; q < at && q < ps->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	snprintf(ps->err, ps->errlen, "line %d, column %d: %s", line, col, what);
}

static struct jval *newval(enum jtype t)
{
	struct jval *v = calloc(1, sizeof(*v));
	if (!v) {
		perror("calloc");
		exit(1);
	}
	v->t = t;
	return v;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static int read_u4(struct parser *ps, unsigned *out)
{
	if (ps->end - ps->p < 4) {
		perr(ps, ps->p, "truncated \\u escape");
		return -1;
	}
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(ps->p[i]);
		if (h < 0) {
			perr(ps, ps->p + i, "invalid hex digit in \\u escape");
			return -1;
		}
		v = v * 16 + (unsigned)h;
	}
	ps->p += 4;
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Length of a valid UTF-8 sequence at p (strict: no overlongs, no surrogates), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	unsigned cp, min;
	if (c < 0x80) return 1;
	if ((c & 0xE0) == 0xC0) {
		n = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else
		return 0;
	if ((size_t)(end - p) < n) return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80) return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
	return n;
}

static char *parse_string_raw(struct parser *ps, size_t *outlen)
{
	const char *q = ps->p + 1; /* past the opening quote */
	/* Output is never longer than the input span. */
	const char *scan = q;
	while (scan < ps->end && *scan != '"') {
		if (*scan == '\\') scan++;
		scan++;
	}
	if (scan >= ps->end) {
		perr(ps, ps->p, "unterminated string");
		return NULL;
	}
	char *out = malloc((size_t)(scan - q) + 1);
	if (!out) {
		perror("malloc");
		exit(1);
	}
	size_t o = 0;
	ps->p = q;
	for (;;) {
		if (ps->p >= ps->end) {
			perr(ps, ps->p, "unterminated string");
			free(out);
			return NULL;
		}
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20) {
			perr(ps, ps->p, "control character in string");
			free(out);
			return NULL;
		}
		if (c == '\\') {
			ps->p++;
			if (ps->p >= ps->end) {
				perr(ps, ps->p, "unterminated string");
				free(out);
				return NULL;
			}
			char e = *ps->p++;
			switch (e) {
			case '"': out[o++] = '"'; break;
			case '\\': out[o++] = '\\'; break;
			case '/': out[o++] = '/'; break;
			case 'b': out[o++] = '\b'; break;
			case 'f': out[o++] = '\f'; break;
			case 'n': out[o++] = '\n'; break;
			case 'r': out[o++] = '\r'; break;
			case 't': out[o++] = '\t'; break;
			case 'u': {
				unsigned cp;
				if (read_u4(ps, &cp)) {
					free(out);
					return NULL;
				}
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					unsigned lo;
					if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
						perr(ps, ps->p, "unpaired surrogate in \\u escape");
						free(out);
						return NULL;
					}
					ps->p += 2;
					if (read_u4(ps, &lo)) {
						free(out);
						return NULL;
					}
					if (lo < 0xDC00 || lo > 0xDFFF) {
						perr(ps, ps->p, "invalid low surrogate");
						free(out);
						return NULL;
					}
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
					perr(ps, ps->p, "unpaired surrogate in \\u escape");
					free(out);
					return NULL;
				}
				if (cp == 0) {
					perr(ps, ps->p, "NUL character in string");
					free(out);
					return NULL;
				}
				o += put_utf8(out + o, cp);
				break;
			}
			default:
				perr(ps, ps->p - 1, "invalid escape in string");
				free(out);
				return NULL;
			}
			continue;
		}
		size_t n = utf8_seq((const unsigned char *)ps->p, (const unsigned char *)ps->end);
		if (!n) {
			perr(ps, ps->p, "invalid UTF-8 in string");
			free(out);
			return NULL;
		}
		memcpy(out + o, ps->p, n);
		o += n;
		ps->p += n;
	}
	out[o] = 0;
	*outlen = o;
	return out;
}

static struct jval *parse_value(struct parser *ps, int depth);

static struct jval *parse_number(struct parser *ps)
{
	const char *s = ps->p, *q = s;
	int is_int = 1;
	if (q < ps->end && *q == '-') q++;
	if (q >= ps->end) {
		perr(ps, q, "invalid number");
		return NULL;
	}
	if (*q == '0')
		q++;
	else if (*q >= '1' && *q <= '9')
		while (q < ps->end && *q >= '0' && *q <= '9') q++;
	else {
		perr(ps, q, "invalid number");
		return NULL;
	}
	if (q < ps->end && *q == '.') {
		is_int = 0;
		q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			perr(ps, q, "invalid number: digit expected after '.'");
			return NULL;
		}
		while (q < ps->end && *q >= '0' && *q <= '9') q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		is_int = 0;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-')) q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			perr(ps, q, "invalid number: digit expected in exponent");
			return NULL;
		}
		while (q < ps->end && *q >= '0' && *q <= '9') q++;
	}
	char tmp[64];
	size_t n = (size_t)(q - s);
	if (n >= sizeof(tmp)) {
		perr(ps, s, "number too long");
		return NULL;
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	struct jval *v = newval(J_NUM);
	v->n = strtod(tmp, NULL);
	if (is_int) {
		char *e;
		v->i = strtoll(tmp, &e, 10);
		/* Integers beyond 64 bits would silently saturate: keep them as doubles only. */
		v->is_int = (fabs(v->n) < 9.2e18);
	}
	ps->p = q;
	return v;
}

static int literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return 0;
	ps->p += n;
	return 1;
}

static struct jval *parse_value(struct parser *ps, int depth)
{
	if (depth > MAX_DEPTH) {
		perr(ps, ps->p, "nesting too deep");
		return NULL;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		perr(ps, ps->p, "unexpected end of input");
		return NULL;
	}
	char c = *ps->p;
	if (c == '{') {
		struct jval *obj = newval(J_OBJ), **tail = &obj->child;
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return obj;
		}
		for (;;) {
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != '"') {
				perr(ps, ps->p, "expected a string key");
				return NULL;
			}
			size_t kl;
			char *key = parse_string_raw(ps, &kl);
			if (!key) return NULL;
			for (struct jval *m = obj->child; m; m = m->next)
				if (strcmp(m->key, key) == 0) {
					char msg[200];
					snprintf(msg, sizeof(msg), "duplicate key \"%.100s\"", key);
					perr(ps, ps->p, msg);
					return NULL;
				}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				perr(ps, ps->p, "expected ':' after key");
				return NULL;
			}
			ps->p++;
			struct jval *v = parse_value(ps, depth + 1);
			if (!v) return NULL;
			v->key = key;
			*tail = v;
			tail = &v->next;
			obj->len++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == '}') {
				ps->p++;
				return obj;
			}
			perr(ps, ps->p, "expected ',' or '}' in object");
			return NULL;
		}
	}
	if (c == '[') {
		struct jval *arr = newval(J_ARR), **tail = &arr->child;
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return arr;
		}
		for (;;) {
			struct jval *v = parse_value(ps, depth + 1);
			if (!v) return NULL;
			*tail = v;
			tail = &v->next;
			arr->len++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == ']') {
				ps->p++;
				return arr;
			}
			perr(ps, ps->p, "expected ',' or ']' in array");
			return NULL;
		}
	}
	if (c == '"') {
		struct jval *v = newval(J_STR);
		v->s = parse_string_raw(ps, &v->len);
		return v->s ? v : NULL;
	}
	if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
	if (literal(ps, "true")) {
		struct jval *v = newval(J_BOOL);
		v->b = 1;
		return v;
	}
	if (literal(ps, "false")) return newval(J_BOOL);
	if (literal(ps, "null")) return newval(J_NULL);
	perr(ps, ps->p, "unexpected character");
	return NULL;
}

struct jval *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct parser ps = { .p = text, .start = text, .end = text + len, .err = err, .errlen = errlen };
	struct jval *v = parse_value(&ps, 0);
	if (!v) return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		perr(&ps, ps.p, "trailing characters after the JSON value");
		return NULL;
	}
	return v;
}

struct jval *json_get(const struct jval *obj, const char *key)
{
	if (!obj || obj->t != J_OBJ) return NULL;
	for (struct jval *m = obj->child; m; m = m->next)
		if (strcmp(m->key, key) == 0) return m;
	return NULL;
}

const char *json_type_name(enum jtype t)
{
	static const char *names[] = { "null", "boolean", "number", "string", "array", "object" };
	return names[t];
}

static int put(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
	if (*pos + n >= cap) return -1;
	memcpy(buf + *pos, s, n);
	*pos += n;
	buf[*pos] = 0;
	return 0;
}

int json_escape(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (put(buf, cap, pos, "\"", 1)) return -1;
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned char c = *p;
		char esc[8];
		size_t el = 0;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			el = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			el = 2;
		} else if (c == '\r') {
			memcpy(esc, "\\r", 2);
			el = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2);
			el = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		if (el) {
			if (put(buf, cap, pos, esc, el)) return -1;
			p++;
			continue;
		}
		size_t sl = utf8_seq(p, end);
		if (!sl) {
			/* Container output is arbitrary bytes; keep the JSON valid like docker does. */
			if (put(buf, cap, pos, "\\ufffd", 6)) return -1;
			p++;
			continue;
		}
		if (put(buf, cap, pos, (const char *)p, sl)) return -1;
		p += sl;
	}
	return put(buf, cap, pos, "\"", 1);
}

int json_write(char *buf, size_t cap, size_t *pos, const struct jval *v)
{
	char num[64];
	switch (v->t) {
	case J_NULL: return put(buf, cap, pos, "null", 4);
	case J_BOOL: return v->b ? put(buf, cap, pos, "true", 4) : put(buf, cap, pos, "false", 5);
	case J_NUM:
		if (v->is_int)
			snprintf(num, sizeof(num), "%lld", v->i);
		else
			snprintf(num, sizeof(num), "%.17g", v->n);
		return put(buf, cap, pos, num, strlen(num));
	case J_STR: return json_escape(buf, cap, pos, v->s, v->len);
	case J_ARR:
	case J_OBJ: {
		if (put(buf, cap, pos, v->t == J_ARR ? "[" : "{", 1)) return -1;
		for (struct jval *c = v->child; c; c = c->next) {
			if (c != v->child && put(buf, cap, pos, ",", 1)) return -1;
			if (v->t == J_OBJ) {
				if (json_escape(buf, cap, pos, c->key, strlen(c->key)) || put(buf, cap, pos, ":", 1))
					return -1;
			}
			if (json_write(buf, cap, pos, c)) return -1;
		}
		return put(buf, cap, pos, v->t == J_ARR ? "]" : "}", 1);
	}
	}
	return -1;
}
