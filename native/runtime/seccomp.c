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

/* Generated from the kernel headers by the Makefile, sorted by name: { "name", nr }. The x32 numbers
 * are without __X32_SYSCALL_BIT. */
struct sysent {
	const char *name;
	int nr;
};
static const struct sysent sys_x86_64[] = {
#include "syscalls_x86_64.h"
};
static const struct sysent sys_i386[] = {
#include "syscalls_i386.h"
};
static const struct sysent sys_x32[] = {
#include "syscalls_x32.h"
};

#define MAX_INSNS 4096 /* BPF_MAXINSNS */
#define X32_BIT 0x40000000U

/* The three ways into the kernel of an x86_64 machine; each is its own table of numbers, and a
 * filter that knows only the first lets `int 0x80` (i386) or x32 numbers walk around it. */
enum abi { ABI_X86_64, ABI_I386, ABI_X32, ABI_N };
static const struct {
	const char *scmp; /* linux.seccomp.architectures name */
	const struct sysent *table;
	size_t n;
	uint32_t bias;
	int arg32; /* libseccomp compares only the low 32 bits of a 32-bit ABI's arguments */
} abis[ABI_N] = {
	{ "SCMP_ARCH_X86_64", sys_x86_64, sizeof(sys_x86_64) / sizeof(sys_x86_64[0]), 0, 0 },
	{ "SCMP_ARCH_X86", sys_i386, sizeof(sys_i386) / sizeof(sys_i386[0]), 0, 1 },
	{ "SCMP_ARCH_X32", sys_x32, sizeof(sys_x32) / sizeof(sys_x32[0]), X32_BIT, 1 },
};

struct seccomp_prog {
	struct sock_filter insn[MAX_INSNS];
	unsigned short len;
};

static int cmp_sysent(const void *key, const void *ent)
{
	return strcmp((const char *)key, ((const struct sysent *)ent)->name);
}

static long syscall_nr(enum abi abi, const char *name)
{
	const struct sysent *e = bsearch(name, abis[abi].table, abis[abi].n, sizeof(struct sysent), cmp_sysent);
	return e ? (long)((uint32_t)e->nr | abis[abi].bias) : -1;
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
 * `fail` is patched later (FAIL_MARK), since blocks are laid out before their end is known.
 * arg32: a 32-bit ABI, whose arguments are compared on their low word only (as libseccomp does,
 * and as the kernel truncates them). */
#define FAIL_MARK 0xff
static int emit_arg(struct seccomp_prog *p, const struct argcmp *a, int arg32)
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
		if (!arg32) {
			if (STMT(BPF_LD | BPF_W | BPF_ABS, hi_off)) return -1;
			if (a->op == OP_MASKED_EQ && STMT(BPF_ALU | BPF_AND | BPF_K, mhi)) return -1;
			if (ne ? JUMP(BPF_JMP | BPF_JEQ | BPF_K, vhi, 0, 2)
			       : JUMP(BPF_JMP | BPF_JEQ | BPF_K, vhi, 0, FAIL_MARK))
				return -1;
		}
		if (STMT(BPF_LD | BPF_W | BPF_ABS, lo_off)) return -1;
		if (a->op == OP_MASKED_EQ && STMT(BPF_ALU | BPF_AND | BPF_K, mlo)) return -1;
		if (ne) return JUMP(BPF_JMP | BPF_JEQ | BPF_K, vlo, FAIL_MARK, 0);
		return JUMP(BPF_JMP | BPF_JEQ | BPF_K, vlo, 0, FAIL_MARK);
	}
	default: {
		/* Unsigned 64-bit order: decide on the high word unless equal, then on the low word. */
		int gt = a->op == OP_GT || a->op == OP_GE;
		if (!arg32) {
			if (STMT(BPF_LD | BPF_W | BPF_ABS, hi_off)) return -1;
			/* hi > vhi ? (gt: match -> skip 3) : (lt: fail) */
			if (JUMP(BPF_JMP | BPF_JGT | BPF_K, vhi, gt ? 3 : FAIL_MARK, 0)) return -1;
			/* hi < vhi: gt fails, lt matches (skip 2) */
			if (JUMP(BPF_JMP | BPF_JEQ | BPF_K, vhi, 0, gt ? FAIL_MARK : 2)) return -1;
		}
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

struct rule {
	const struct jval *names;
	uint32_t act;
	struct argcmp args[6];
	int nargs;
};

/* Patches every FAIL_MARK in insn[start, len) to land at len (just after the block). */
static int patch_fail(struct seccomp_prog *p, unsigned short start, const char *path)
{
	for (unsigned short i = start; i < p->len; i++) {
		struct sock_filter *f = &p->insn[i];
		if (BPF_CLASS(f->code) != BPF_JMP || BPF_OP(f->code) == BPF_JA) continue;
		unsigned dist = (unsigned)(p->len - i - 1);
		if ((f->jt == FAIL_MARK || f->jf == FAIL_MARK) && dist > 254)
			return seterr("config.json: %s: rule too long", path);
		if (f->jt == FAIL_MARK) f->jt = (uint8_t)dist;
		if (f->jf == FAIL_MARK) f->jf = (uint8_t)dist;
	}
	return 0;
}

/* The rules of one ABI, entered with A = the syscall number; ends with the default action.
 * Rules are tried in order, first match wins. A run of names without arguments sharing an action
 * is one JEQ per name to a shared RET. Only nr and arch are read before a syscall's own block, so
 * the kernel's seccomp cache can tell which syscalls are always allowed and skip the filter. */
static int emit_abi(struct seccomp_prog *p, enum abi abi, const struct rule *rules, int nrules, uint32_t defact)
{
	int a_is_nr = 1;
	for (int ri = 0; ri < nrules; ri++) {
		const struct rule *r = &rules[ri];
		char path[64];
		snprintf(path, sizeof(path), "linux.seccomp.syscalls[%d]", ri);
		const struct jval *nm = r->names->child;
		while (nm) {
			if (nm->t != J_STR) return seterr("config.json: %s.names: expected strings", path);
			long nr = syscall_nr(abi, nm->s);
			if (nr < 0) { /* unknown to this ABI: nothing to match, as libseccomp does */
				nm = nm->next;
				continue;
			}
			if (!a_is_nr && STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))) return -1;
			unsigned short start = p->len;
			if (r->nargs == 0) {
				/* JEQ nr -> RET for up to 200 names (jump offsets are 8 bits), then the RET */
				int k = 0;
				for (; nm && k < 200; nm = nm->next) {
					if (nm->t != J_STR)
						return seterr("config.json: %s.names: expected strings", path);
					long n = syscall_nr(abi, nm->s);
					if (n < 0) continue;
					if (JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)n, FAIL_MARK, 0)) return -1;
					k++;
				}
				/* after the run: no match skips the RET; a match jumps to it */
				if (JUMP(BPF_JMP | BPF_JA, 1, 0, 0) || STMT(BPF_RET | BPF_K, r->act)) return -1;
				for (unsigned short i = start; i < p->len - 2; i++)
					p->insn[i].jt = (uint8_t)(p->len - 1 - i - 1);
				a_is_nr = 1;
				continue;
			}
			if (JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, FAIL_MARK)) return -1;
			for (int k = 0; k < r->nargs; k++)
				if (emit_arg(p, &r->args[k], abis[abi].arg32)) return -1;
			if (STMT(BPF_RET | BPF_K, r->act) || patch_fail(p, start, path)) return -1;
			a_is_nr = 0;
			nm = nm->next;
		}
	}
	return STMT(BPF_RET | BPF_K, defact);
}

/* linux.seccomp.architectures: the ABIs whose syscalls the rules cover. The native one always is,
 * as with libseccomp; other architectures' names (arm, mips...) cannot occur here and are skipped. */
static int parse_arches(const struct jval *sc, int want[ABI_N])
{
	memset(want, 0, sizeof(int) * ABI_N);
	want[ABI_X86_64] = 1;
	const struct jval *a = json_get(sc, "architectures");
	if (!a || a->t == J_NULL) return 0;
	if (a->t != J_ARR) return seterr("config.json: linux.seccomp.architectures: expected an array");
	for (const struct jval *e = a->child; e; e = e->next) {
		if (e->t != J_STR) return seterr("config.json: linux.seccomp.architectures: expected strings");
		for (int i = 0; i < ABI_N; i++)
			if (!strcmp(e->s, abis[i].scmp)) want[i] = 1;
	}
	return 0;
}

struct seccomp_prog *seccomp_compile(const struct jval *sc)
{
	static struct seccomp_prog prog;
	static struct rule rules[1024];
	struct seccomp_prog *p = &prog;
	uint32_t defact;
	int want[ABI_N];
	p->len = 0;
	if (sc->t != J_OBJ) {
		seterr("config.json: linux.seccomp: expected an object");
		return NULL;
	}
	if (action(sc, "defaultAction", "defaultErrnoRet", "linux.seccomp", &defact) || parse_arches(sc, want))
		return NULL;
	struct jval *list = json_get(sc, "syscalls");
	if (list && list->t != J_ARR && list->t != J_NULL) {
		seterr("config.json: linux.seccomp.syscalls: expected an array");
		return NULL;
	}
	int nrules = 0;
	for (struct jval *r = list && list->t == J_ARR ? list->child : NULL; r; r = r->next, nrules++) {
		char path[64];
		snprintf(path, sizeof(path), "linux.seccomp.syscalls[%d]", nrules);
		if (nrules >= (int)(sizeof(rules) / sizeof(rules[0]))) {
			seterr("config.json: linux.seccomp.syscalls: more than %d rules", nrules);
			return NULL;
		}
		struct rule *ru = &rules[nrules];
		ru->names = json_get(r, "names");
		if (!ru->names || ru->names->t != J_ARR) {
			seterr("config.json: %s.names: expected an array of syscall names", path);
			return NULL;
		}
		if (action(r, "action", "errnoRet", path, &ru->act) ||
		    parse_args(json_get(r, "args"), path, ru->args, &ru->nargs))
			return NULL;
	}
	/* Dispatch on the ABI; one the spec does not list is killed (libseccomp's bad-arch action):
	 * no syscall of it has been judged, so none may run. */
	unsigned short ja_x86_64, ja_i386 = 0, ja_x32 = 0;
	if (STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)) ||
	    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 1))
		return NULL;
	ja_x86_64 = p->len;
	if (JUMP(BPF_JMP | BPF_JA, 0, 0, 0)) return NULL;
	if (want[ABI_I386]) {
		if (JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 1)) return NULL;
		ja_i386 = p->len;
		if (JUMP(BPF_JMP | BPF_JA, 0, 0, 0)) return NULL;
	}
	if (STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)) return NULL;
	/* x86_64 and x32 share AUDIT_ARCH_X86_64; x32 numbers carry __X32_SYSCALL_BIT. */
	p->insn[ja_x86_64].k = (uint32_t)(p->len - ja_x86_64 - 1);
	if (STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)) ||
	    JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_BIT, 0, 1))
		return NULL;
	if (want[ABI_X32]) {
		ja_x32 = p->len;
		if (JUMP(BPF_JMP | BPF_JA, 0, 0, 0)) return NULL;
	} else if (STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)) {
		return NULL;
	}
	if (emit_abi(p, ABI_X86_64, rules, nrules, defact)) return NULL;
	if (want[ABI_X32]) {
		p->insn[ja_x32].k = (uint32_t)(p->len - ja_x32 - 1);
		if (emit_abi(p, ABI_X32, rules, nrules, defact)) return NULL;
	}
	if (want[ABI_I386]) {
		p->insn[ja_i386].k = (uint32_t)(p->len - ja_i386 - 1);
		if (STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)) ||
		    emit_abi(p, ABI_I386, rules, nrules, defact))
			return NULL;
	}
	return p;
}

int seccomp_load(const struct seccomp_prog *p)
{
	struct sock_fprog fp = { .len = p->len, .filter = (struct sock_filter *)p->insn };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
		return seterr("seccomp: load filter (%u instructions): %s", p->len, strerror(errno));
	return 0;
}

void seccomp_print(const struct seccomp_prog *p, FILE *out)
{
	for (unsigned short i = 0; i < p->len; i++)
		fprintf(out, "%u %u %u %u\n", p->insn[i].code, p->insn[i].jt, p->insn[i].jf, p->insn[i].k);
}
