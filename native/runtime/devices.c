#include "devices.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

const struct dev_rule dev_defaults[] = {
	{ 1, 'c', -1, -1, "m" }, { 1, 'b', -1, -1, "m" }, { 1, 'c', 1, 3, "rwm" },    { 1, 'c', 1, 5, "rwm" },
	{ 1, 'c', 1, 7, "rwm" }, { 1, 'c', 1, 8, "rwm" }, { 1, 'c', 1, 9, "rwm" },    { 1, 'c', 5, 0, "rwm" },
	{ 1, 'c', 5, 1, "rwm" }, { 1, 'c', 5, 2, "rwm" }, { 1, 'c', 136, -1, "rwm" }, { 1, 'c', 10, 200, "rwm" },
};
const int dev_ndefaults = sizeof(dev_defaults) / sizeof(dev_defaults[0]);

#define MAX_INSNS 4096

struct prog {
	struct bpf_insn insn[MAX_INSNS];
	int len;
};

static int emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	if (p->len >= MAX_INSNS) return seterr("device rules: more than %d BPF instructions", MAX_INSNS);
	p->insn[p->len++] = (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
	return 0;
}

static unsigned access_bits(const char *a)
{
	unsigned b = 0;
	if (strchr(a, 'm')) b |= BPF_DEVCG_ACC_MKNOD;
	if (strchr(a, 'r')) b |= BPF_DEVCG_ACC_READ;
	if (strchr(a, 'w')) b |= BPF_DEVCG_ACC_WRITE;
	return b;
}

/* One rule: falls through to "return allow" when the request matches, else jumps past its end.
 * Registers (from the prelude): r2 type, r3 access, r4 major, r5 minor. Returns 1 for a rule that
 * matches every request: nothing after it can run (the verifier refuses unreachable code). */
static int emit_rule(struct prog *p, const struct dev_rule *r)
{
	int start = p->len;
	unsigned acc = access_bits(r->access);
	const unsigned all = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
	/* the jumps' offsets are set below, once the block's end is known (off = -1 marks them) */
	if (r->type != 'a' &&
	    emit(p, BPF_JMP32 | BPF_JNE | BPF_K, 2, 0, -1, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR))
		return -1;
	if ((acc & all) != all) {
		/* some of the access asked for is not in the rule: not a match */
		if (emit(p, BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0) ||
		    emit(p, BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, (int32_t)(~acc & all)) ||
		    emit(p, BPF_JMP32 | BPF_JNE | BPF_K, 1, 0, -1, 0))
			return -1;
	}
	if (r->type != 'a' && r->major >= 0 && emit(p, BPF_JMP32 | BPF_JNE | BPF_K, 4, 0, -1, (int32_t)r->major))
		return -1;
	if (r->type != 'a' && r->minor >= 0 && emit(p, BPF_JMP32 | BPF_JNE | BPF_K, 5, 0, -1, (int32_t)r->minor))
		return -1;
	if (emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow ? 1 : 0) || emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0))
		return -1;
	for (int i = start; i < p->len; i++)
		if (BPF_CLASS(p->insn[i].code) == BPF_JMP32 && p->insn[i].off == -1)
			p->insn[i].off = (int16_t)(p->len - i - 1);
	return p->len - start == 2;
}

static int build(struct prog *p, const struct resources *res)
{
	p->len = 0;
	/* struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; } */
	if (emit(p, BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0) || emit(p, BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff) ||
	    emit(p, BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0) || emit(p, BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16) ||
	    emit(p, BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0) || emit(p, BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0))
		return -1;
	/* The last rule that matches decides: try them from the end, up to one that matches all. */
	for (int i = dev_ndefaults + res->ndevs - 1; i >= 0; i--) {
		int r = emit_rule(p, i >= res->ndevs ? &dev_defaults[i - res->ndevs] : &res->devs[i]);
		if (r) return r < 0 ? -1 : 0;
	}
	return emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0) || emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static int bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int dev_bpf_attach(const char *cgdir, const struct resources *res)
{
	static struct prog p;
	static char log[4096];
	if (build(&p, res)) return -1;
	union bpf_attr load;
	memset(&load, 0, sizeof(load));
	load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	load.insns = (uint64_t)(uintptr_t)p.insn;
	load.insn_cnt = (uint32_t)p.len;
	load.license = (uint64_t)(uintptr_t) "Apache";
	int prog = bpf(BPF_PROG_LOAD, &load);
	if (prog < 0) {
		/* again with the verifier's log, for an error that says why */
		load.log_level = 1;
		load.log_buf = (uint64_t)(uintptr_t)log;
		load.log_size = sizeof(log);
		log[0] = 0;
		prog = bpf(BPF_PROG_LOAD, &load);
	}
	if (prog < 0) {
		int e = errno;
		log[strcspn(log, "\n")] = 0; /* the verifier's first line says what it refused */
		return seterr("cgroup: load the device program (%d instructions): %s%s%.200s", p.len, strerror(e),
		              log[0] ? ": " : "", log);
	}
	int dir = open(cgdir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dir < 0) {
		int e = errno;
		close(prog);
		return seterr("cgroup: open %s: %s", cgdir, strerror(e));
	}
	union bpf_attr at;
	memset(&at, 0, sizeof(at));
	at.target_fd = (uint32_t)dir;
	at.attach_bpf_fd = (uint32_t)prog;
	at.attach_type = BPF_CGROUP_DEVICE;
	at.attach_flags = BPF_F_ALLOW_MULTI;
	int r = bpf(BPF_PROG_ATTACH, &at), e = errno;
	close(dir);
	close(prog); /* the attachment holds the program for as long as the cgroup lives */
	if (r < 0) return seterr("cgroup: attach the device program to %s: %s", cgdir, strerror(e));
	return 0;
}
