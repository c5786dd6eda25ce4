import { describe, expect, it } from 'vitest';
import { buildOciSpec, DEFAULT_CAPABILITIES, mergeEnv, resolveCommand, type ImageRuntimeConfig } from './oci-spec.js';
import { withSpecDefaults } from '../../api/container-spec.js';
import type { ContainerSpec } from '../../api/container.js';
import { defaultSeccomp, kernelAtLeast, parseSecurityOpts } from './seccomp.js';

const image: ImageRuntimeConfig = { env: ['PATH=/bin', 'A=image'], entrypoint: ['/entry'], cmd: ['default', 'args'], workingDir: '/srv', user: '' };
const spec = (over: Partial<ContainerSpec>) => ({ ...withSpecDefaults({ image: 'x', hostname: 'h1', ...over }) }) as unknown as ContainerSpec;

describe('resolveCommand (docker rules)', () => {
  it('uses the image entrypoint and cmd when nothing is given', () => {
    expect(resolveCommand(spec({}), image)).toEqual(['/entry', 'default', 'args']);
  });
  it('replaces only the cmd when a command is given', () => {
    expect(resolveCommand(spec({ cmd: ['x'] }), image)).toEqual(['/entry', 'x']);
  });
  it('drops the image cmd when the entrypoint is overridden', () => {
    expect(resolveCommand(spec({ entrypoint: ['/bin/sh'], entrypointSet: true }), image)).toEqual(['/bin/sh']);
    expect(resolveCommand(spec({ entrypoint: [], entrypointSet: true, cmd: ['ls'] }), image)).toEqual(['ls']);
  });
});

describe('mergeEnv', () => {
  it('lets the container override the image and keeps PATH', () => {
    expect(mergeEnv(['PATH=/bin', 'A=1'], ['A=2', 'B=3'])).toEqual(['PATH=/bin', 'A=2', 'B=3']);
    expect(mergeEnv([], ['X=1'])[1]).toMatch(/^PATH=/);
  });
});

describe('buildOciSpec', () => {
  const build = (over: Partial<ContainerSpec>, uid = 0) => buildOciSpec({
    id: 'c1', spec: spec(over), image, rootfs: '/r', uid, gid: uid, additionalGids: [], cgroupsPath: '/tsswarm/c1',
    etcFiles: { hosts: '/h', hostname: '/hn', resolvConf: '/rc' },
  }) as any;

  it('maps resource limits to the runtime spec', () => {
    const s = build({ memoryBytes: 64 << 20, nanoCpus: 500_000_000, pidsLimit: 32 });
    expect(s.linux.resources.memory).toEqual({ limit: 64 << 20 });
    expect(s.linux.resources.cpu).toEqual({ quota: 50_000, period: 100_000 });
    expect(s.linux.resources.pids).toEqual({ limit: 32 });
    expect(s.linux.cgroupsPath).toBe('/tsswarm/c1');
  });
  it('gives a new network namespace for --network none and none for host', () => {
    const types = (s: any) => s.linux.namespaces.map((n: any) => n.type);
    expect(types(build({ network: 'none' }))).toContain('network');
    expect(types(build({ network: 'host' }))).not.toContain('network');
  });
  it('gives root Docker\'s default capabilities and a non-root user none effective', () => {
    expect(build({}).process.capabilities.effective).toEqual(DEFAULT_CAPABILITIES);
    expect(build({}, 1000).process.capabilities.effective).toEqual([]);
    expect(build({}, 1000).process.capabilities.bounding).toEqual(DEFAULT_CAPABILITIES);
  });
  it('bind-mounts volumes read-only when asked', () => {
    const m = build({ mounts: [{ source: '/data', target: '/mnt', readOnly: true }] }).mounts.find((x: any) => x.destination === '/mnt');
    expect(m.options).toContain('ro');
    expect(m.source).toBe('/data');
  });
  it('sets the working dir from the spec, else the image', () => {
    expect(build({}).process.cwd).toBe('/srv');
    expect(build({ workingDir: '/tmp' }).process.cwd).toBe('/tmp');
  });
});

describe('seccomp (Docker\'s default profile, resolved per container)', () => {
  const build = (over: Partial<ContainerSpec>) => buildOciSpec({
    id: 'c1', spec: spec(over), image, rootfs: '/r', uid: 0, gid: 0, additionalGids: [], cgroupsPath: '/tsswarm/c1',
    etcFiles: { hosts: '/h', hostname: '/hn', resolvConf: '/rc' },
  }) as any;
  const rulesFor = (sc: any, name: string) => sc.syscalls.filter((r: any) => r.names.includes(name));
  const host = { goarch: 'amd64', kernel: '6.1.0-13-amd64' };

  it('puts Docker\'s default profile in linux.seccomp, covering the x86_64, i386 and x32 ABIs', () => {
    const sc = build({}).linux.seccomp;
    expect(sc.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(sc.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const allowed = new Set(sc.syscalls.filter((r: any) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r: any) => r.names));
    for (const s of ['read', 'write', 'execve', 'openat', 'arch_prctl', 'chroot']) expect(allowed.has(s), s).toBe(true);
    for (const s of ['unshare', 'setns', 'mount', 'keyctl', 'add_key', 'bpf', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'kexec_load', 'clone3']) {
      expect(allowed.has(s), s).toBe(false);
    }
  });
  it('without CAP_SYS_ADMIN, clone is allowed only without namespace flags and clone3 says ENOSYS (so libc falls back to clone)', () => {
    const sc = build({}).linux.seccomp;
    expect(rulesFor(sc, 'clone')).toEqual([{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    expect(rulesFor(sc, 'clone3')).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
    expect(rulesFor(sc, 'personality').map((r: any) => r.args[0].value)).toEqual([0, 8, 131072, 131080, 4294967295]);
  });
  it('resolves includes/excludes by capabilities, architecture and kernel as dockerd does', () => {
    const admin = defaultSeccomp([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], host);
    expect(rulesFor(admin, 'clone').map((r: any) => r.args)).toEqual([undefined]);
    expect(rulesFor(admin, 'mount')).toHaveLength(1);
    expect(rulesFor(defaultSeccomp(DEFAULT_CAPABILITIES, { goarch: 'amd64', kernel: '4.4.0' }), 'ptrace')).toEqual([]);
    expect(rulesFor(defaultSeccomp(DEFAULT_CAPABILITIES, host), 'ptrace')).toHaveLength(1);
    expect(defaultSeccomp(DEFAULT_CAPABILITIES, { goarch: 'arm64', kernel: '6.1' }).architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(kernelAtLeast('4.10.0', '4.8')).toBe(true);
    expect(kernelAtLeast('4.7.9', '4.8')).toBe(false);
  });
  it('--security-opt: seccomp=unconfined drops the filter, seccomp=PROFILE replaces it, no-new-privileges=false clears the bit', () => {
    expect(build({ securityOpt: ['seccomp=unconfined'] }).linux.seccomp).toBeUndefined();
    const custom = build({ securityOpt: [`seccomp=${JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] })}`] }).linux.seccomp;
    expect(custom).toEqual({ defaultAction: 'SCMP_ACT_ALLOW', architectures: [], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    expect(build({}).process.noNewPrivileges).toBe(true);
    expect(build({ securityOpt: ['no-new-privileges=false'] }).process.noNewPrivileges).toBe(false);
    expect(() => parseSecurityOpts(['apparmor=x'])).toThrow(/invalid --security-opt "apparmor=x"/);
    expect(() => parseSecurityOpts(['seccomp={nope'])).toThrow(/seccomp profile: not JSON/);
  });
});
