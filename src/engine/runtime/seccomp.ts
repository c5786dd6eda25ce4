/**
 * The seccomp profile a container gets, in config.json's linux.seccomp (OCI) form. Profiles come in
 * Docker's format, where a rule may apply only with some capabilities, on some architectures or from
 * some kernel version on; they are resolved here for one container exactly as dockerd resolves them
 * (profiles/seccomp/seccomp_linux.go, setupSeccomp): by the container's bounding capabilities, the
 * host's architecture and its kernel. The default is Docker's own profile (seccomp-default-profile.ts,
 * generated from Debian's package of Docker's source), less io_uring as Docker's default since 25.0.
 */
import { arch, release } from 'node:os';
import { DOCKER_DEFAULT_PROFILE } from './seccomp-default-profile.js';
import type { DockerSeccompProfile, DockerSeccompRule, OciSeccomp } from './seccomp-profile.js';

export type { DockerSeccompProfile, DockerSeccompRule, OciSeccomp, SeccompArg } from './seccomp-profile.js';

/** Docker 25 dropped these from its default: io_uring bypasses syscall filtering and is a rich source of kernel bugs. */
const REMOVED_FROM_DEFAULT = new Set(['io_uring_enter', 'io_uring_register', 'io_uring_setup']);

/** Go's GOARCH names (as profiles write them) and libseccomp's, for the node's architecture. */
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le', mips: 'mips', riscv64: 'riscv64' };
const SCMP_ARCH: Record<string, string> = { amd64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM', '386': 'SCMP_ARCH_X86', s390x: 'SCMP_ARCH_S390X', ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64' };

export interface SeccompHost { goarch: string; kernel: string }
export const thisHost = (): SeccompHost => ({ goarch: GOARCH[arch()] ?? arch(), kernel: release() });

/** "6.1.0-13-amd64" >= "4.8"? Compares major.minor as dockerd does. */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const v = (s: string) => s.split(/[.-]/).slice(0, 2).map((x) => Number.parseInt(x, 10) || 0);
  const [a = 0, b = 0] = v(kernel);
  const [c = 0, d = 0] = v(min);
  return a !== c ? a > c : b >= d;
}

/** Resolves a Docker-format profile for a container with these bounding capabilities. */
export function resolveProfile(profile: DockerSeccompProfile, boundingCaps: readonly string[], host: SeccompHost = thisHost()): OciSeccomp {
  if (profile.architectures?.length && profile.archMap?.length) throw new Error('seccomp profile: use either architectures or archMap, not both');
  const native = SCMP_ARCH[host.goarch];
  const architectures = profile.architectures?.length ? [...profile.architectures]
    : (profile.archMap ?? []).filter((a) => a.architecture === native).flatMap((a) => [a.architecture, ...a.subArchitectures]);
  const caps = new Set(boundingCaps);
  const applies = (r: DockerSeccompRule): boolean => {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (exc.arches?.includes(host.goarch)) return false;
    if (exc.caps?.some((c) => caps.has(c))) return false;
    if (exc.minKernel && kernelAtLeast(host.kernel, exc.minKernel)) return false;
    if (inc.arches?.length && !inc.arches.includes(host.goarch)) return false;
    if (inc.caps?.some((c) => !caps.has(c))) return false;
    if (inc.minKernel && !kernelAtLeast(host.kernel, inc.minKernel)) return false;
    return true;
  };
  const syscalls = (profile.syscalls ?? []).filter(applies).map((r) => {
    const names = r.names?.length ? r.names : r.name ? [r.name] : [];
    if (names.length === 0) throw new Error('seccomp profile: a rule names no syscall');
    return {
      names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args?.length ? { args: r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })) } : {}),
    };
  });
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
}

/** Docker's default profile for a container with these bounding capabilities. */
export function defaultSeccomp(boundingCaps: readonly string[], host: SeccompHost = thisHost()): OciSeccomp {
  const oci = resolveProfile(DOCKER_DEFAULT_PROFILE, boundingCaps, host);
  oci.syscalls = oci.syscalls
    .map((r) => ({ ...r, names: r.action === 'SCMP_ACT_ALLOW' ? r.names.filter((n) => !REMOVED_FROM_DEFAULT.has(n)) : r.names }))
    .filter((r) => r.names.length > 0);
  return oci;
}

/** A profile given by the user (`--security-opt seccomp=FILE`, the file's text): Docker's format or OCI's. */
export function parseProfile(text: string): DockerSeccompProfile {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw new Error(`seccomp profile: not JSON: ${(e as Error).message}`);
  }
  if (!p || typeof p !== 'object' || typeof (p as DockerSeccompProfile).defaultAction !== 'string') {
    throw new Error('seccomp profile: expected an object with a defaultAction');
  }
  return p as DockerSeccompProfile;
}

/** The container's security options, as `docker run --security-opt` takes them. */
export interface SecurityOptions { seccomp: 'default' | 'unconfined' | DockerSeccompProfile; noNewPrivileges: boolean }

/**
 * Reads `--security-opt` values: `seccomp=unconfined`, `seccomp=<profile JSON>` (the CLI puts the
 * file's text in, as docker's does), `no-new-privileges[=true|false]` (also with `:`).
 */
export function parseSecurityOpts(opts: readonly string[]): SecurityOptions {
  const out: SecurityOptions = { seccomp: 'default', noNewPrivileges: true };
  for (const o of opts) {
    const m = /^([a-z-]+)(?:[=:]([\s\S]*))?$/.exec(o);
    const key = m?.[1];
    const value = m?.[2];
    if (key === 'seccomp' && value !== undefined) {
      out.seccomp = value === 'unconfined' ? 'unconfined' : parseProfile(value);
    } else if (key === 'no-new-privileges' && (value === undefined || value === 'true' || value === 'false')) {
      out.noNewPrivileges = value !== 'false';
    } else {
      throw new Error(`invalid --security-opt "${o.slice(0, 60)}": expected seccomp=unconfined|PROFILE or no-new-privileges[=true|false]`);
    }
  }
  return out;
}

/** linux.seccomp for a container, or undefined when it runs unconfined. */
export function seccompFor(opts: SecurityOptions, boundingCaps: readonly string[]): OciSeccomp | undefined {
  if (opts.seccomp === 'unconfined') return undefined;
  if (opts.seccomp === 'default') return defaultSeccomp(boundingCaps);
  return resolveProfile(opts.seccomp, boundingCaps);
}
