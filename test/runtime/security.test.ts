// Attacks a container must not get away with, tried for real through native/build/tsswarm-runtime
// with the config.json the engine writes (Docker's default seccomp profile, Docker's device rules).
// Each test also shows the attack working without the defence, so a refusal is the defence's doing.
// Needs root, gcc (the probe is built static into the busybox rootfs) and cgroup v1 controllers.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES } from '../../src/engine/runtime/oci-spec.js';
import { defaultSeccomp } from '../../src/engine/runtime/seccomp.js';
import { baseSpec, buildNative, makeRootfs, removeCgroups, REPO, RUNTIME, sh, shDetached, SHIM, tempDir, umountAll, waitFor, writeBundle } from './helpers.js';

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

  // A disk the host can read: a loop device over a file that starts with SECRET-DISK.
  let loop = '';
  let disk = { major: 0, minor: 0 };

  beforeAll(() => {
    buildNative();
    work = tempDir('tsswarm-sec-test-');
    chmodSync(work, 0o755);
    stateRoot = join(work, 'state');
    rootfs = makeRootfs(work);
    execFileSync('gcc', ['-static', '-O2', '-o', join(rootfs, 'bin/syscall-probe'), join(REPO, 'test/runtime/fixtures/syscall-probe.c')]);
    const img = join(work, 'disk.img');
    writeFileSync(img, Buffer.concat([Buffer.from('SECRET-DISK'), Buffer.alloc(65536 - 11)]));
    loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    const rdev = statSync(loop).rdev;
    disk = { major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
    expect(readFileSync(loop).subarray(0, 11).toString()).toBe('SECRET-DISK');
  });

  afterEach(() => {
    for (const id of ids) sh(RUNTIME, ['--root', stateRoot, 'delete', '--force', id]);
    ids.clear();
  });

  afterAll(() => {
    for (const id of ids) sh(RUNTIME, ['--root', stateRoot, 'delete', '--force', id]);
    if (work) umountAll(work);
    if (loop) sh('losetup', ['-d', loop]);
    removeCgroups(CGP);
    for (const d of [`/sys/fs/cgroup/unified${CGP}`, `/sys/fs/cgroup/unified${CGP}-v2`]) if (existsSync(d)) sh('rmdir', [d]);
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

  describe('devices', () => {
    const attack = () => `mknod /dev/disk b ${disk.major} ${disk.minor} && head -c 11 /dev/disk; echo " rc=$?"`;
    const runWith = (env: Record<string, string>, bundle: string, id: string) =>
      sh('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), RUNTIME, '--root', stateRoot, 'run', '--bundle', bundle, id]);

    it.each([
      ['v1 devices controller and device program both', {}],
      ['v1 devices controller alone', { TSSWARM_RUNTIME_DEVICE_CGROUP: 'v1' }],
      ['cgroup v2 device program alone (the unified tree of this hybrid host)', { TSSWARM_RUNTIME_DEVICE_CGROUP: 'bpf' }],
    ])('a root container that makes a node for the host\'s disk (CAP_MKNOD, as Docker keeps it) cannot read it: EPERM (%s)', (_what, env) => {
      const id = newId('mknod');
      const r = runWith(env, engineSpec(id, ['/bin/sh', '-c', attack()]), id);
      expect(r.stdout).not.toMatch(/SECRET/);
      expect(r.stdout.trim()).toBe('rc=1');
      expect(r.stderr).toMatch(/head: \/dev\/disk: Operation not permitted/);
      // Without device rules the same container reads the disk: the refusal is the device control's.
      const open = newId('mknod-open');
      const o = runWith(env, engineSpec(open, ['/bin/sh', '-c', attack()], (s) => { delete s.linux.resources.devices; }), open);
      expect(o.stdout).toBe('SECRET-DISK rc=0\n');
    });

    it('a process exec\'d into a running container is under the same device program (the unified-tree cgroup is joined too)', async () => {
      const id = newId('execdev');
      const b = engineSpec(id, ['/bin/sleep', '30']);
      const c = shDetached('env', ['TSSWARM_RUNTIME_DEVICE_CGROUP=bpf', RUNTIME, '--root', stateRoot, 'run', '-d', '--bundle', b, id], work);
      expect(c.stderr).toBe('');
      const r = sh('env', ['TSSWARM_RUNTIME_DEVICE_CGROUP=bpf', RUNTIME, '--root', stateRoot, 'exec', id, '/bin/sh', '-c', attack()]);
      expect(r.stdout.trim()).toBe('rc=1');
      expect(r.stderr).toMatch(/Operation not permitted/);
    });

    it('on a cgroup v2 host the device program is the only guard, and it holds: mknod + read of the host\'s disk fails with EPERM', () => {
      // The unified tree mounted at /sys/fs/cgroup in a private mount namespace: the runtime sees a pure v2 host.
      const id = newId('v2dev');
      const b = engineSpec(id, ['/bin/sh', '-c', attack()], (s) => { s.linux.cgroupsPath = `${CGP}-v2/${id}`; });
      const script = `mount -t cgroup2 none /sys/fs/cgroup || exit 9
        ${RUNTIME} --root ${stateRoot} run --bundle ${b} ${id}; echo "exit=$?"
        test -d /sys/fs/cgroup${CGP}-v2/${id} && echo leftover
        rmdir /sys/fs/cgroup${CGP}-v2`;
      const r = shDetached('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], work);
      expect(r.stdout).not.toMatch(/SECRET|leftover/);
      expect(r.stdout.trim().split('\n')).toEqual(['rc=1', 'exit=0']);
      expect(r.stderr).toMatch(/head: \/dev\/disk: Operation not permitted/);
    });

    it('a block device node with mode 0666 in an image layer gives a non-root user nothing, even with every device allowed (layers and the writable layer are mounted nodev)', async () => {
      const base = join(work, 'layered');
      const layer = join(base, 'layer');
      mkdirSync(layer, { recursive: true });
      execFileSync('mknod', ['-m', '0666', join(layer, 'disk'), 'b', String(disk.major), String(disk.minor)]);
      const id = newId('layer');
      const s = baseSpec(join(base, 'merged'), ['/bin/sh', '-c', 'id -u; head -c 11 /disk; echo " rc=$?"']);
      s.root.readonly = false;
      s.process.user = { uid: 1000, gid: 1000 };
      s.linux.cgroupsPath = `${CGP}/${id}`;
      s.linux.resources.devices = [{ allow: true, access: 'rwm' }]; // as --privileged or --device would
      writeBundle(join(base, 'bundle'), s);
      const state = join(base, 'state');
      const r = shDetached(SHIM, ['--runtime', RUNTIME, '--runtime-arg', '--root', '--runtime-arg', stateRoot, '--id', id,
        '--bundle', join(base, 'bundle'), '--state-dir', state, '--log', join(state, 'log'),
        '--lower', `${layer}:${rootfs}`, '--upper', join(base, 'upper'), '--work', join(base, 'work')], work);
      expect(r.stderr).toBe('');
      expect(await waitFor(() => existsSync(join(state, 'exit.json')), 10_000)).toBe(true);
      const out = readFileSync(join(state, 'log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).log).join('');
      expect(out).not.toMatch(/SECRET/);
      expect(out).toMatch(/^1000\n/);
      expect(out).toMatch(/head: \/disk: Permission denied/);
      // The same node on a plain (dev) filesystem is read by that user: the refusal is nodev's.
      const plain = join(base, 'plain');
      execFileSync('cp', ['-a', rootfs, plain]);
      execFileSync('mknod', ['-m', '0666', join(plain, 'disk'), 'b', String(disk.major), String(disk.minor)]);
      const pid = newId('layer-plain');
      const p = run(writeBundle(join(base, 'bundle-plain'), { ...s, root: { path: plain, readonly: false }, linux: { ...s.linux, cgroupsPath: `${CGP}/${pid}` } }), pid);
      expect(p.stdout).toBe('1000\nSECRET-DISK rc=0\n');
    });
  });

  describe('the runtime binary (CVE-2019-5736)', () => {
    const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

    it('a container whose /bin/sh is "#!/proc/self/exe", racing to open /proc/*/exe for writing while the runtime execs into it, leaves the runtime binary unchanged', () => {
      // The victim: a copy of the runtime, so that a successful attack harms nothing else.
      const victimDir = join(work, 'victim');
      mkdirSync(victimDir, { recursive: true });
      const victim = join(victimDir, 'tsswarm-runtime');
      copyFileSync(RUNTIME, victim);
      chmodSync(victim, 0o755);
      const before = sha256(victim);
      const evil = join(work, 'evil-rootfs');
      execFileSync('cp', ['-a', rootfs, evil]);
      rmSync(join(evil, 'bin/sh'));
      writeFileSync(join(evil, 'bin/sh'), '#!/proc/self/exe\n', { mode: 0o755 });
      execFileSync('gcc', ['-static', '-O2', '-o', join(evil, 'bin/exe-overwrite'), join(REPO, 'test/runtime/fixtures/exe-overwrite.c')]);
      const id = newId('cve5736');
      const b = engineSpec(id, ['/bin/exe-overwrite', '20', '/result'], (s) => { s.root = { path: evil, readonly: false }; });
      const vrt = (...args: string[]) => sh(victim, ['--root', stateRoot, ...args]);
      const started = shDetached(victim, ['--root', stateRoot, 'run', '-d', '--bundle', b, id], work);
      expect(started.stderr).toBe('');
      const result = () => (existsSync(join(evil, 'result')) ? readFileSync(join(evil, 'result'), 'utf8') : '');
      // `exec ID /bin/sh`, as a user or a health check would: the kernel runs /proc/self/exe, the runtime itself, in the container.
      for (let i = 0; i < 40 && !/overwrote/.test(result()); i++) vrt('exec', id, '/bin/sh', '-c', 'true');
      vrt('delete', '--force', id);
      expect(result()).not.toMatch(/overwrote/);
      expect(result()).toMatch(/^refused E(ROFS|ACCES|PERM)/);
      expect(sha256(victim)).toBe(before);
    });
  });

  describe('sysctls', () => {
    it('linux.sysctl is written in the container\'s own namespaces before /proc/sys turns read-only (podman sets net.ipv4.ping_group_range on every container), and the host keeps its values', () => {
      const hostPing = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8');
      const hostShm = readFileSync('/proc/sys/kernel/shmmni', 'utf8');
      const id = newId('sysctl');
      const r = run(engineSpec(id, ['/bin/sh', '-c', 'cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni; echo 1 > /proc/sys/kernel/shmmni'], (s) => {
        s.linux.sysctl = { 'net.ipv4.ping_group_range': '0 2147483647', 'kernel.shmmni': '1234' };
      }), id);
      expect(r.stdout.split('\n').slice(0, 2).map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 2147483647', '1234']);
      expect(r.stderr).toMatch(/Read-only file system/); // the container itself cannot change them
      expect(readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8')).toBe(hostPing);
      expect(readFileSync('/proc/sys/kernel/shmmni', 'utf8')).toBe(hostShm);
    });

    it('a sysctl the container would share with the host is refused at create with one line, and nothing is written', () => {
      const swappiness = readFileSync('/proc/sys/vm/swappiness', 'utf8');
      const cases: Array<[Record<string, string>, (s: any) => void, RegExp]> = [
        [{ 'vm.swappiness': '7' }, () => {}, /"vm\.swappiness" is not in a separate kernel namespace/],
        [{ 'net.ipv4.ip_forward': '1' }, (s) => { s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'network'); }, /needs a network namespace of the container's own/],
        [{ 'net.ipv4.ip_forward': '1' }, (s) => { s.linux.namespaces = s.linux.namespaces.map((n: any) => (n.type === 'network' ? { type: 'network', path: '/proc/self/ns/net' } : n)); }, /is the host's/],
      ];
      for (const [sysctl, mutate, message] of cases) {
        const id = newId('sysctl-host');
        const r = run(engineSpec(id, ['/bin/true'], (s) => { s.linux.sysctl = sysctl; mutate(s); }), id);
        expect(r.status).toBe(1);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(message);
      }
      expect(readFileSync('/proc/sys/vm/swappiness', 'utf8')).toBe(swappiness);
    });
  });
});
