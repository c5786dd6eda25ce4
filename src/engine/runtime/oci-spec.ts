/**
 * Turns a container spec plus its image's config into an OCI runtime-spec config.json that runc, crun
 * and our own runtime all accept. Defaults follow Docker's so that images behave as users expect.
 */
import type { ContainerSpec } from '../../api/container.js';
import { parseSecurityOpts, seccompFor } from './seccomp.js';

/** Docker's default capability set: enough for ordinary services, nothing that reaches the host. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CPU_PERIOD_US = 100_000;

export interface ImageRuntimeConfig {
  env: string[];
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string;
  user: string;
}

export interface OciSpecInput {
  id: string;
  spec: ContainerSpec;
  image: ImageRuntimeConfig;
  rootfs: string;
  /** Resolved numeric identity of spec.user (or the image's user). */
  uid: number;
  gid: number;
  additionalGids: number[];
  cgroupsPath: string;
  /** Per-container files bind-mounted over the image's: /etc/hosts, /etc/hostname, /etc/resolv.conf. */
  etcFiles: { hosts: string; hostname: string; resolvConf: string };
}

/** The process args: Docker's rule — the spec's entrypoint/cmd override the image's, cmd follows entrypoint. */
export function resolveCommand(spec: ContainerSpec, image: ImageRuntimeConfig): string[] {
  const entrypoint = spec.entrypointSet ? spec.entrypoint : (image.entrypoint ?? []);
  // A new entrypoint drops the image's cmd, as in Docker.
  const cmd = spec.cmd.length > 0 ? spec.cmd : spec.entrypointSet ? [] : (image.cmd ?? []);
  return [...entrypoint, ...cmd];
}

/** Image env first, then the spec's; later keys win; PATH always present. */
export function mergeEnv(imageEnv: string[], specEnv: string[]): string[] {
  const byKey = new Map<string, string>();
  for (const kv of [...imageEnv, ...specEnv]) {
    const eq = kv.indexOf('=');
    byKey.set(eq < 0 ? kv : kv.slice(0, eq), kv);
  }
  if (!byKey.has('PATH')) byKey.set('PATH', `PATH=${DEFAULT_PATH}`);
  return [...byKey.values()];
}

export function buildOciSpec(input: OciSpecInput): Record<string, unknown> {
  const { spec, image } = input;
  const args = resolveCommand(spec, image);
  const env = mergeEnv(image.env, spec.env);
  if (!env.some((kv) => kv.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${spec.hostname}`);

  const namespaces: { type: string; path?: string }[] = [
    { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' },
  ];
  if (spec.sandbox) namespaces.push({ type: 'network', path: spec.sandbox.netnsPath });
  else if (spec.network === 'none') namespaces.push({ type: 'network' });

  const resources: Record<string, unknown> = {
    devices: [{ allow: false, access: 'rwm' }, ...DEFAULT_DEVICE_RULES],
  };
  if (spec.memoryBytes > 0) resources.memory = { limit: spec.memoryBytes };
  if (spec.nanoCpus > 0) {
    resources.cpu = { quota: Math.max(1000, Math.round((spec.nanoCpus * CPU_PERIOD_US) / 1e9)), period: CPU_PERIOD_US };
  }
  if (spec.pidsLimit > 0) resources.pids = { limit: spec.pidsLimit };

  // A non-root user keeps the bounding set but starts without effective capabilities, as in Docker.
  const caps = DEFAULT_CAPABILITIES;
  const heldCaps = input.uid === 0 ? caps : [];
  // Records written before securityOpt existed have none: they get the defaults.
  const security = parseSecurityOpts(spec.securityOpt ?? []);
  const seccomp = seccompFor(security, caps);
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.gid, ...(input.additionalGids.length ? { additionalGids: input.additionalGids } : {}) },
      args,
      env,
      cwd: spec.workingDir || image.workingDir || '/',
      capabilities: { bounding: caps, effective: heldCaps, permitted: heldCaps },
      // No rlimits: containers inherit the daemon's, which raising would need CAP_SYS_RESOURCE for.
      noNewPrivileges: security.noNewPrivileges,
      oomScoreAdj: 0,
    },
    root: { path: input.rootfs, readonly: spec.readOnly },
    hostname: spec.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      { destination: '/etc/hosts', type: 'bind', source: input.etcFiles.hosts, options: ['rbind', 'rprivate'] },
      { destination: '/etc/hostname', type: 'bind', source: input.etcFiles.hostname, options: ['rbind', 'rprivate'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: input.etcFiles.resolvConf, options: ['rbind', 'rprivate'] },
      ...spec.mounts.map((m) => ({
        destination: m.target,
        type: 'bind',
        source: m.source,
        options: ['rbind', 'rprivate', ...(m.readOnly ? ['ro'] : [])],
      })),
    ],
    linux: {
      namespaces,
      cgroupsPath: input.cgroupsPath,
      resources,
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      ...(seccomp ? { seccomp } : {}),
    },
  };
}

/** The character devices every container may use (null, zero, full, tty, random, urandom, pts, ptmx). */
const DEFAULT_DEVICE_RULES = [
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
];
