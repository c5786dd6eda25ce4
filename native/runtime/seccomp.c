#include "seccomp.h"
#include "util.h"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Generated from the kernel headers by the Makefile: { "name", nr }. */
static const struct {
	const char *name;
	int nr;
} syscalls[] = {
#include "syscalls.h"
};

#define MAX_INSNS 4096 /* BPF_MAXINSNS */
#define X32_BIT 0x40000000U

struct seccomp_prog {
	struct sock_filter insn[MAX_INSNS];
	unsigned short len;
};

static int syscall_nr(const char *name)
{
	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
		if (strcmp(syscalls[i].name, name) == 0) return syscalls[i].nr;
	return -1;
}

static int action(const struct jval *obj, const char *key, const char *errkey, const char *path, uint32_t *out)
{
	struct jval *a = json_get(obj, key), *e = json_get(obj, errkey);
	if (!a || a->t != J_STR) return seterr("config.json: %s.%s: expected an action string", path, key);
	uint32_t errnum = EPERM;
	if (e) {
		if (e->t != J_NUM || !e->is_int || e->i < 0 || e->i > 4095)
			return seterr("config.json: %s.%s: expected an errno", path, errkey);
		errnum = (uint32_t)e->i;
	}
	const char *n = a->s;
	if (!strcmp(n, "SCMP_ACT_ALLOW"))
		*out = SECCOMP_RET_ALLOW;
	else if (!strcmp(n, "SCMP_ACT_ERRNO"))
		*out = SECCOMP_RET_ERRNO | errnum;
	else if (!strcmp(n, "SCMP_ACT_KILL") || !strcmp(n, "SCMP_ACT_KILL_THREAD"))
		*out = SECCOMP_RET_KILL_THREAD;
	else if (!strcmp(n, "SCMP_ACT_KILL_PROCESS"))
		*out = SECCOMP_RET_KILL_PROCESS;
	else if (!strcmp(n, "SCMP_ACT_TRAP"))
		*out = SECCOMP_RET_TRAP;
	else if (!strcmp(n, "SCMP_ACT_LOG"))
		*out = SECCOMP_RET_LOG;
	else if (!strcmp(n, "SCMP_ACT_TRACE"))
		*out = SECCOMP_RET_TRACE | (e ? errnum : 0);
	else
		return seterr("config.json: %s.%s: unsupported action \"%.40s\"", path, key, n);
	return 0;
}

static int emit(struct seccomp_prog *p, struct sock_filter f)
{
	if (p->len >= MAX_INSNS)
		return seterr("config.json: linux.seccomp: the filter exceeds %d BPF instructions", MAX_INSNS);
	p->insn[p->len++] = f;
	return 0;
}
#define STMT(code, k) emit(p, (struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) emit(p, (struct sock_filter)BPF_JUMP(code, k, jt, jf))

struct argcmp {
	unsigned index;
	uint64_t value, value2;
	int op;
};
enum { OP_NE, OP_LT, OP_LE, OP_EQ, OP_GE, OP_GT, OP_MASKED_EQ };

/* One argument test. Emits code that falls through on match and jumps to `fail` otherwise;
 * `fail` is patched later (FAIL_MARK), since blocks are laid out before their end is known. */
#define FAIL_MARK 0xff
static int emit_arg(struct seccomp_prog *p, const struct argcmp *a)
{
	uint32_t lo_off = (uint32_t)offsetof(struct seccomp_data, args) + 8 * a->index, hi_off = lo_off + 4;
	uint32_t vlo = (uint32_t)a->value, vhi = (uint32_t)(a->value >> 32);
	switch (a->op) {
	case OP_EQ:
	case OP_NE:
	case OP_MASKED_EQ: {
		uint32_t mlo = (uint32_t)a->value, mhi = (uint32_t)(a->value >> 32);
		if (a->op == OP_MASKED_EQ) {
			vlo = (uint32_t)a->value2;
			vhi = (uint32_t)(a->value2 >> 32);
		}
		int ne = a->op == OP_NE;
		/* hi word, then lo word; for NE a difference in either is a match */
		if (STMT(BPF_LD | BPF_W | BPF_ABS, hi_off)) return -1;
		if (a->op == OP_MASKED_EQ && STMT(BPF_ALU | BPF_AND | BPF_K, mhi)) return -1;
		if (ne ? JUMP(BPF_JMP | BPF_JEQ | BPF_K, vhi, 0, 2)
		       : JUMP(BPF_JMP | BPF_JEQ | BPF_K, vhi, 0, FAIL_MARK))
			return -1;
		if (STMT(BPF_LD | BPF_W | BPF_ABS, lo_off)) return -1;
		if (a->op == OP_MASKED_EQ && STMT(BPF_ALU | BPF_AND | BPF_K, mlo)) return -1;
		if (ne) return JUMP(BPF_JMP | BPF_JEQ | BPF_K, vlo, FAIL_MARK, 0);
		return JUMP(BPF_JMP | BPF_JEQ | BPF_K, vlo, 0, FAIL_MARK);
	}
	default: {
		/* Unsigned 64-bit order: decide on the high word unless equal, then on the low word. */
		int gt = a->op == OP_GT || a->op == OP_GE;
		if (STMT(BPF_LD | BPF_W | BPF_ABS, hi_off)) return -1;
		/* hi > vhi ? (gt: match -> skip 3) : (lt: fail) */
		if (JUMP(BPF_JMP | BPF_JGT | BPF_K, vhi, gt ? 3 : FAIL_MARK, 0)) return -1;
		/* hi < vhi: gt fails, lt matches (skip 2) */
		if (JUMP(BPF_JMP | BPF_JEQ | BPF_K, vhi, 0, gt ? FAIL_MARK : 2)) return -1;
		if (STMT(BPF_LD | BPF_W | BPF_ABS, lo_off)) return -1;
		switch (a->op) {
		case OP_GT: return JUMP(BPF_JMP | BPF_JGT | BPF_K, vlo, 0, FAIL_MARK);
		case OP_GE: return JUMP(BPF_JMP | BPF_JGE | BPF_K, vlo, 0, FAIL_MARK);
		case OP_LT: return JUMP(BPF_JMP | BPF_JGE | BPF_K, vlo, FAIL_MARK, 0);
		default: return JUMP(BPF_JMP | BPF_JGT | BPF_K, vlo, FAIL_MARK, 0); /* LE */
		}
	}
	}
}

static int parse_args(const struct jval *args, const char *path, struct argcmp *out, int *n)
{
	static const char *ops[] = { "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",       "SCMP_CMP_EQ",
		                     "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ" };
	*n = 0;
	if (!args || args->t == J_NULL) return 0;
	if (args->t != J_ARR) return seterr("config.json: %s.args: expected an array", path);
	for (struct jval *a = args->child; a; a = a->next) {
		if (*n >= 6) return seterr("config.json: %s.args: at most 6 conditions", path);
		struct jval *idx = json_get(a, "index"), *v = json_get(a, "value"), *v2 = json_get(a, "valueTwo"),
			    *op = json_get(a, "op");
		if (!idx || idx->t != J_NUM || !idx->is_int || idx->i < 0 || idx->i > 5)
			return seterr("config.json: %s.args: index must be 0..5", path);
		if (!v || v->t != J_NUM || !op || op->t != J_STR)
			return seterr("config.json: %s.args: value and op are required", path);
		struct argcmp *c = &out[(*n)++];
		c->index = (unsigned)idx->i;
		c->value = v->is_int ? (uint64_t)v->i : (uint64_t)v->n;
		c->value2 = v2 && v2->t == J_NUM ? (v2->is_int ? (uint64_t)v2->i : (uint64_t)v2->n) : 0;
		c->op = -1;
		for (int k = 0; k < 7; k++)
			if (!strcmp(op->s, ops[k])) c->op = k;
		if (c->op < 0) return seterr("config.json: %s.args: unknown op \"%.40s\"", path, op->s);
	}
	return 0;
}

struct seccomp_prog *seccomp_compile(const struct jval *sc)
{
	static struct seccomp_prog prog;
	struct seccomp_prog *p = &prog;
	uint32_t defact;
	p->len = 0;
	if (sc->t != J_OBJ) {
		seterr("config.json: linux.seccomp: expected an object");
		return NULL;
	}
	if (action(sc, "defaultAction", "defaultErrnoRet", "linux.seccomp", &defact)) return NULL;
	/* Other ABIs (i386, x32) are not translated: they get the default action. */
	if (STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)) ||
	    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0) || STMT(BPF_RET | BPF_K, defact) ||
	    STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)) ||
	    JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_BIT, 0, 1) || STMT(BPF_RET | BPF_K, defact))
		return NULL;
	struct jval *rules = json_get(sc, "syscalls");
	if (rules && rules->t != J_ARR) {
		seterr("config.json: linux.seccomp.syscalls: expected an array");
		return NULL;
	}
	int ri = 0, a_is_nr = 1;
	for (struct jval *r = rules ? rules->child : NULL; r; r = r->next, ri++) {
		char path[64];
		snprintf(path, sizeof(path), "linux.seccomp.syscalls[%d]", ri);
		uint32_t act;
		struct argcmp args[6];
		int nargs;
		struct jval *names = json_get(r, "names");
		if (!names || names->t != J_ARR) {
			seterr("config.json: %s.names: expected an array of syscall names", path);
			return NULL;
		}
		if (action(r, "action", "errnoRet", path, &act) || parse_args(json_get(r, "args"), path, args, &nargs))
			return NULL;
		for (struct jval *nm = names->child; nm; nm = nm->next) {
			if (nm->t != J_STR) {
				seterr("config.json: %s.names: expected strings", path);
				return NULL;
			}
			int nr = syscall_nr(nm->s);
			if (nr < 0)
				continue; /* unknown to this kernel's headers: nothing to match, as libseccomp does */
			if (!a_is_nr && STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))) return NULL;
			unsigned short start = p->len;
			if (JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, FAIL_MARK)) return NULL;
			for (int k = 0; k < nargs; k++)
				if (emit_arg(p, &args[k])) return NULL;
			if (STMT(BPF_RET | BPF_K, act)) return NULL;
			/* Patch every FAIL_MARK of this block to land just after it. */
			for (unsigned short i = start; i < p->len; i++) {
				struct sock_filter *f = &p->insn[i];
				if (BPF_CLASS(f->code) != BPF_JMP) continue;
				unsigned dist = (unsigned)(p->len - i - 1);
				if (dist > 254) {
					seterr("config.json: %s: rule too long", path);
					return NULL;
				}
				if (f->jt == FAIL_MARK) f->jt = (uint8_t)dist;
				if (f->jf == FAIL_MARK) f->jf = (uint8_t)dist;
			}
			a_is_nr = nargs == 0;
		}
	}
	if (STMT(BPF_RET | BPF_K, defact)) return NULL;
	return p;
}

int seccomp_load(const struct seccomp_prog *p)
{
	struct sock_fprog fp = { .len = p->len, .filter = (struct sock_filter *)p->insn };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
		return seterr("seccomp: load filter (%u instructions): %s", p->len, strerror(errno));
	return 0;
}
