// Attacks a container must not get away with, tried for real through native/build/tsswarm-runtime
// with the config.json the engine writes (Docker's default seccomp profile, Docker's device rules).
// Each test also shows the attack working without the defence, so a refusal is the defence's doing.
// Needs root, gcc (the probe is built static into the busybox rootfs) and cgroup v1 controllers.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES } from '../../src/engine/runtime/oci-spec.js';
import { defaultSeccomp } from '../../src/engine/runtime/seccomp.js';
import { baseSpec, buildNative, makeRootfs, removeCgroups, REPO, RUNTIME, sh, tempDir, writeBundle } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const CGP = `/tsswarm-sec-${process.pid}`;

// seccomp_data and the return values of a filter (linux/seccomp.h, linux/audit.h)
const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const RET_ALLOW = 0x7fff0000;
const RET_EPERM = 0x00050000 | 1;
const RET_KILL_PROCESS = 0x80000000;

/** Runs a classic BPF seccomp filter over one syscall, as the kernel does (the ops our compiler emits). */
function runFilter(prog: number[][], arch: number, nr: number, args: bigint[] = []): number {
  const word = (off: number): number => {
    if (off === 0) return nr >>> 0;
    if (off === 4) return arch >>> 0;
    const i = Math.floor((off - 16) / 8);
    const v = args[i] ?? 0n;
    return Number((off - 16) % 8 === 0 ? v & 0xffffffffn : v >> 32n) >>> 0;
  };
  let a = 0;
  for (let pc = 0; pc < prog.length;) {
    const [code, jt, jf, k] = prog[pc]! as [number, number, number, number];
    switch (code) {
      case 0x20: a = word(k); pc++; break; // ld [k]
      case 0x54: a = (a & k) >>> 0; pc++; break; // and #k
      case 0x05: pc += 1 + k; break; // ja
      case 0x15: pc += 1 + (a === k ? jt : jf); break; // jeq
      case 0x25: pc += 1 + (a > k ? jt : jf); break; // jgt
      case 0x35: pc += 1 + (a >= k ? jt : jf); break; // jge
      case 0x06: return k; // ret
      default: throw new Error(`unexpected BPF opcode ${code} at ${pc}`);
    }
  }
  throw new Error('filter ran off its end');
}

describe.skipIf(!isRoot)('container security: the attacks Docker\'s defaults stop', () => {
  let work = '';
  let rootfs = '';
  let stateRoot = '';
  let n = 0;
  const ids = new Set<string>();

  const newId = (name: string) => {
    const id = `tsswarm-sec-${name}-${process.pid}-${n++}`;
    ids.add(id);
    return id;
  };
  /** The engine's defaults for a root container: Docker's capabilities and seccomp profile. */
  const engineSpec = (id: string, args: string[], mutate: (s: any) => void = () => {}) => {
    const s = baseSpec(rootfs, args);
    const caps = [...DEFAULT_CAPABILITIES];
    s.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
    s.linux.seccomp = defaultSeccomp(caps);
    s.linux.cgroupsPath = `${CGP}/${id}`;
    mutate(s);
    return writeBundle(join(work, 'bundles', id), s);
  };
  const run = (bundle: string, id: string) => sh(RUNTIME, ['--root', stateRoot, 'run', '--bundle', bundle, id]);
  /** `NAME RESULT` lines of the static probe (test/runtime/fixtures/syscall-probe.c) as a map. */
  const probe = (names: string[], mutate: (s: any) => void = () => {}): Record<string, string> => {
    const id = newId('probe');
    const r = run(engineSpec(id, ['/bin/syscall-probe', ...names], mutate), id);
    expect(r.stderr).toBe('');
    return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  };

  beforeAll(() => {
    buildNative();
    work = tempDir('tsswarm-sec-test-');
    stateRoot = join(work, 'state');
    rootfs = makeRootfs(work);
    execFileSync('gcc', ['-static', '-O2', '-o', join(rootfs, 'bin/syscall-probe'), join(REPO, 'test/runtime/fixtures/syscall-probe.c')]);
  });

  afterEach(() => {
    for (const id of ids) sh(RUNTIME, ['--root', stateRoot, 'delete', '--force', id]);
    ids.clear();
  });

  afterAll(() => {
    for (const id of ids) sh(RUNTIME, ['--root', stateRoot, 'delete', '--force', id]);
    removeCgroups(CGP);
    if (work) sh('rm', ['-rf', work]);
  });

  describe('seccomp', () => {
    it('a default container runs under a seccomp filter: /proc/self/status says Seccomp 2', () => {
      const id = newId('status');
      const r = run(engineSpec(id, ['/bin/sh', '-c', 'grep -E "^Seccomp:" /proc/self/status']), id);
      expect(r.stdout.trim().split(/\s+/)).toEqual(['Seccomp:', '2']);
    });

    it('a root container cannot make a user namespace (unshare -Ur, clone(CLONE_NEWUSER)) nor reach keyctl, add_key, bpf, userfaultfd or io_uring: EPERM', () => {
      const attacks = ['unshare-user', 'clone-newuser', 'keyctl', 'add_key', 'bpf', 'userfaultfd', 'io_uring_setup'];
      const refused = probe(['getpid', ...attacks]);
      expect(refused).toEqual({ getpid: 'ok', ...Object.fromEntries(attacks.map((a) => [a, 'EPERM'])) });
      // The same container without the filter: every one of them gets past EPERM (the kernel alone allows them).
      const open = probe(attacks, (s) => { delete s.linux.seccomp; });
      for (const a of attacks) expect(open[a], a).not.toBe('EPERM');
      // and busybox's unshare, as a user would try it
      const id = newId('unshare');
      const r = run(engineSpec(id, ['/bin/sh', '-c', 'unshare -Ur true; echo rc=$?']), id);
      expect(r.stdout.trim()).toBe('rc=1');
      expect(r.stderr).toMatch(/unshare\(0x10000000\): Operation not permitted/);
    });

    it('x32 syscall numbers (__X32_SYSCALL_BIT) cannot walk around a filter: refused by the default profile and by a deny-list that lists x32', () => {
      expect(probe(['x32-keyctl', 'x32-unshare-user'])).toEqual({ 'x32-keyctl': 'EPERM', 'x32-unshare-user': 'EPERM' });
      const denyList = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [{ names: ['keyctl', 'unshare'], action: 'SCMP_ACT_ERRNO' }],
      };
      expect(probe(['keyctl', 'x32-keyctl', 'x32-unshare-user'], (s) => { s.linux.seccomp = denyList; }))
        .toEqual({ keyctl: 'EPERM', 'x32-keyctl': 'EPERM', 'x32-unshare-user': 'EPERM' });
      // Without a filter the kernel answers ENOSYS (no x32 here): EPERM above is the filter's.
      expect(probe(['x32-keyctl'], (s) => { delete s.linux.seccomp; })).toEqual({ 'x32-keyctl': 'ENOSYS' });
    });

    it('a syscall of an ABI the profile does not list is killed, not let through by an allow-by-default profile', () => {
      const nativeOnly = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['keyctl'], action: 'SCMP_ACT_ERRNO' }] };
      expect(probe(['getpid', 'keyctl', 'x32-keyctl'], (s) => { s.linux.seccomp = nativeOnly; }))
        .toEqual({ getpid: 'ok', keyctl: 'EPERM', 'x32-keyctl': 'signal-31' });
    });

    it('i386 syscalls (int 0x80) are judged by the i386 table: keyctl (288, accept4 on x86_64) and unshare/clone of a user namespace refused, getpid allowed', () => {
      // This kernel has no ia32 entry (int 0x80 faults), so the compiled filter is run as the kernel would run it.
      const id = newId('bpf');
      const out = sh(RUNTIME, ['seccomp-bpf', '--bundle', engineSpec(id, ['/bin/true'])]);
      expect(out.stderr).toBe('');
      const prog = out.stdout.trim().split('\n').map((l) => l.split(' ').map(Number));
      const CLONE_NEWUSER = 0x10000000n;
      const SIGCHLD = 17n;
      expect(runFilter(prog, AUDIT_ARCH_I386, 20)).toBe(RET_ALLOW); // getpid
      expect(runFilter(prog, AUDIT_ARCH_I386, 288)).toBe(RET_EPERM); // keyctl
      expect(runFilter(prog, AUDIT_ARCH_I386, 310, [CLONE_NEWUSER])).toBe(RET_EPERM); // unshare
      expect(runFilter(prog, AUDIT_ARCH_I386, 120, [SIGCHLD])).toBe(RET_ALLOW); // clone (fork)
      expect(runFilter(prog, AUDIT_ARCH_I386, 120, [CLONE_NEWUSER | SIGCHLD])).toBe(RET_EPERM);
      // A 32-bit ABI is compared on the low word only (the kernel truncates): high garbage changes nothing.
      expect(runFilter(prog, AUDIT_ARCH_I386, 120, [(0xdeadn << 32n) | CLONE_NEWUSER | SIGCHLD])).toBe(RET_EPERM);
      // The same numbers on x86_64 mean other syscalls: 288 is accept4 (allowed), 20 writev.
      expect(runFilter(prog, AUDIT_ARCH_X86_64, 288)).toBe(RET_ALLOW);
      expect(runFilter(prog, AUDIT_ARCH_X86_64, 250)).toBe(RET_EPERM); // keyctl
      expect(runFilter(prog, AUDIT_ARCH_X86_64, 56, [CLONE_NEWUSER | SIGCHLD])).toBe(RET_EPERM); // clone
      expect(runFilter(prog, 0xc00000b7 /* aarch64 */, 20)).toBe(RET_KILL_PROCESS);
    });

    it('--security-opt no-new-privileges=false still loads the filter (before capabilities are dropped)', () => {
      const attacks = ['unshare-user', 'keyctl'];
      expect(probe(attacks, (s) => { s.process.noNewPrivileges = false; })).toEqual({ 'unshare-user': 'EPERM', keyctl: 'EPERM' });
    });
  });
});
