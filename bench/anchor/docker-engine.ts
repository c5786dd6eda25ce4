/**
 * A private Docker engine for benchmark anchors: Debian's docker.io (dockerd 20.10 + containerd + runc),
 * started inside a network namespace this process creates (`tswbd-<pid>`), so that the bridges, veths and
 * iptables rules dockerd makes live there and never in the root namespace. The namespace holds only lo
 * and a veth pair whose end carries 192.0.2.1/24 (swarm's advertise address); with no default route,
 * nothing dockerd or its containers send can leave it.
 *
 * `ip netns exec` gives dockerd a private mount namespace (so its overlay and netns mounts vanish with it)
 * and a fresh /sys for the namespace, which hides /sys/fs/cgroup: the start script mounts the machine's
 * cgroup hierarchies there again (the same ones, read from our mountinfo) before it execs dockerd.
 *
 * Everything is ended by PID (dockerd from its pidfile, containerd as its child, shims by the socket
 * address of our containerd, task processes from our own cgroup), never by name.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The 20.10 CLI that docker.io installs; /usr/local/bin/docker may be a newer one that does not match. */
export const DOCKER_CLI = '/usr/bin/docker';
const DOCKERD = '/usr/sbin/dockerd';
export const ADVERTISE_ADDR = '192.0.2.1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Installs docker.io when dockerd is missing; returns why it could not, or null. */
export function ensureDockerInstalled(): string | null {
  return ensureDebianPackage('docker.io', [DOCKERD, DOCKER_CLI]);
}

/**
 * Installs a Debian package for an anchor when one of `files` is missing; returns why it could not,
 * or null. The package's postinst may start a service (docker.service, podman.socket): a policy-rc.d
 * that denies it keeps daemons out of the root namespace. Only one written here is removed again.
 */
export function ensureDebianPackage(pkg: string, files: string[]): string | null {
  if (files.every((f) => existsSync(f))) return null;
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, `#!/bin/sh\n# written by a tsswarm bench while installing ${pkg}\nexit 101\n`, { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, encoding: 'utf8' });
    console.log(`# anchor: installing ${pkg} (apt-get install -y ${pkg})`);
    let r = install();
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { env, stdio: 'ignore' });
      r = install();
    }
    if (r.status !== 0) return `apt-get install ${pkg} failed: ${lastLine(r.stderr || r.stdout || String(r.error))}`;
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  const missing = files.filter((f) => !existsSync(f));
  return missing.length === 0 ? null : `${pkg} installed but ${missing.join(', ')} missing`;
}

function lastLine(text: string | null | undefined): string {
  return (text ?? '').trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
}

/** The cgroup mounts under /sys/fs/cgroup as shell commands that recreate them in another mount namespace. */
function cgroupMountScript(): string {
  const lines: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4]!;
    const [fstype, , superOpts] = post.split(' ');
    if (!mountPoint.startsWith('/sys/fs/cgroup')) continue;
    if (fstype === 'tmpfs' && mountPoint === '/sys/fs/cgroup') lines.unshift('mount -t tmpfs -o mode=755 tswbd-cgroup /sys/fs/cgroup');
    else if (fstype === 'cgroup' || fstype === 'cgroup2') lines.push(`mkdir -p ${mountPoint} && mount -t ${fstype} -o ${superOpts} ${fstype} ${mountPoint}`);
  }
  return lines.join('\n');
}

export interface EngineRss { dockerdMiB: number; containerdMiB: number }

export class DockerEngine {
  readonly netns = `tswbd-${process.pid}`;
  /** dockerd's --cgroup-parent: a name of our own, so its task cgroups can be found and removed. */
  readonly cgroupParent = `tswbd-${process.pid}`;
  readonly dir = mkdtempSync(`/tmp/tswbd-${process.pid}-`);
  readonly socket = join(this.dir, 'docker.sock');
  private readonly execRoot = join(this.dir, 'exec');
  private readonly pidfile = join(this.dir, 'dockerd.pid');
  readonly log = join(this.dir, 'dockerd.log');
  private dockerdPid = 0;
  private containerdPid = 0;
  private netnsCreated = false;
  private stopping: Promise<void> | null = null;

  /** Creates the namespace and starts dockerd in it; throws with the reason when the engine will not come up. */
  async start(): Promise<void> {
    const add = spawnSync('ip', ['netns', 'add', this.netns], { encoding: 'utf8' });
    if (add.status !== 0) throw new Error(`ip netns add ${this.netns}: ${lastLine(add.stderr || String(add.error))}`);
    this.netnsCreated = true;
    // Both veth ends stay in the namespace: a link for the advertise address, nothing reaching out.
    const links = spawnSync('ip', ['-n', this.netns, '-batch', '-'], {
      encoding: 'utf8',
      input: ['link set lo up', 'link add tswbd0 type veth peer name tswbd1', `addr add ${ADVERTISE_ADDR}/24 dev tswbd0`,
        'link set tswbd1 up', 'link set tswbd0 up'].join('\n') + '\n',
    });
    if (links.status !== 0) throw new Error(`setting up ${this.netns}: ${lastLine(links.stderr || String(links.error))}`);

    const script = `set -e\n${cgroupMountScript()}\nexec "$@"`;
    const logFd = openSync(this.log, 'a');
    // detached: a Ctrl-C on the terminal reaches us, not dockerd, so the shutdown below stays orderly.
    // DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1: swarm's executor otherwise tries a registry pull of every
    // task's tag before using the local image (a DNS lookup that can only fail in here, and time ours never spends).
    const child = spawn('ip', ['netns', 'exec', this.netns, 'sh', '-c', script, 'tswbd-start', DOCKERD,
      '--data-root', join(this.dir, 'data'), '--exec-root', this.execRoot, '--pidfile', this.pidfile,
      '--host', `unix://${this.socket}`, '--iptables=true', '--cgroup-parent', this.cgroupParent],
    { detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: '1' } });
    closeSync(logFd);
    child.unref();
    this.dockerdPid = child.pid ?? 0; // `ip netns exec` and sh exec: the PID stays dockerd's
    let exited: string | null = null;
    child.once('exit', (code, signal) => { exited = `dockerd exited (${signal ?? code})`; });

    const deadline = Date.now() + 60_000;
    for (;;) {
      if (exited) throw new Error(`${exited}: ${this.logTail()}`);
      if (existsSync(this.socket) && (await this.api('GET', '/_ping').then(() => true, () => false))) break;
      if (Date.now() > deadline) throw new Error(`dockerd not answering after 60 s: ${this.logTail()}`);
      await sleep(100);
    }
    const fromFile = Number(readFileSync(this.pidfile, 'utf8').trim());
    if (fromFile) this.dockerdPid = fromFile;
    this.containerdPid = childrenOf(this.dockerdPid).find((pid) => comm(pid) === 'containerd') ?? 0;
  }

  private logTail(): string {
    try {
      const lines = readFileSync(this.log, 'utf8').trim().split('\n');
      const bad = lines.filter((l) => /level=(error|fatal)|failed|Error/.test(l));
      return (bad.slice(-1)[0] ?? lines.slice(-1)[0] ?? '').slice(0, 400);
    } catch {
      return 'no log';
    }
  }

  /** The Docker CLI (20.10) against this engine. */
  async cli(...args: string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync(DOCKER_CLI, ['-H', `unix://${this.socket}`, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 });
      return stdout;
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`docker ${args.slice(0, 2).join(' ')}: ${lastLine(e.stderr) || e.message}`);
    }
  }

  /** One Engine API call over the unix socket (what the CLI does, without a process per poll). */
  api(method: string, path: string): Promise<any> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, method, path: `/v1.41${path}`, timeout: 30_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => {
          if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${body.trim()}`));
          else resolve(body && res.headers['content-type']?.includes('json') ? JSON.parse(body) : body);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** dockerd's and containerd's PIDs (0 before start), e.g. to read their peak RSS. */
  pids(): { dockerd: number; containerd: number } {
    return { dockerd: this.dockerdPid, containerd: this.containerdPid };
  }

  rss(): EngineRss {
    return { dockerdMiB: rssMiB(this.dockerdPid), containerdMiB: rssMiB(this.containerdPid) };
  }

  /** Idempotent; safe after a failed start. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.dockerdPid && alive(this.dockerdPid)) {
      // Orderly first: remove services, wait (bounded) for their containers, leave the swarm.
      try {
        for (const s of (await this.api('GET', '/services')) as { ID: string }[]) await this.api('DELETE', `/services/${s.ID}`);
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline && ((await this.api('GET', '/containers/json?all=1')) as unknown[]).length > 0) await sleep(250);
        await this.api('POST', '/swarm/leave?force=1');
      } catch { /* the engine may be half up: the signals below still end it */ }
      if (!this.containerdPid) this.containerdPid = childrenOf(this.dockerdPid).find((pid) => comm(pid) === 'containerd') ?? 0;
      await terminate(this.dockerdPid, 30_000, this.dir);
    }
    if (this.containerdPid) await terminate(this.containerdPid, 10_000, this.dir);
    // Shims outlive containerd by design; ours are the ones talking to our containerd's socket.
    for (const pid of shimsOf(join(this.execRoot, 'containerd', 'containerd.sock'))) killPid(pid, 'SIGKILL');
    // Task processes left by a killed shim are in our cgroup: end them by PID.
    const cgroups = this.cgroupDirs();
    for (const dir of cgroups) for (const pid of readPids(join(dir, 'cgroup.procs'))) killPid(pid, 'SIGKILL');
    await sleep(cgroups.length ? 200 : 0);
    for (const dir of cgroups) spawnSync('rmdir', [dir]);
    // Mounts under our roots are normally only in dockerd's mount namespace, gone with it; any seen here go first.
    for (const m of mountsUnder(this.dir).reverse()) spawnSync('umount', ['-l', m]);
    rmSync(this.dir, { recursive: true, force: true });
    if (this.netnsCreated) spawnSync('ip', ['netns', 'del', this.netns]);
  }

  /** Our cgroup-parent's directories in every hierarchy, deepest first (memory may sit under our own cgroup). */
  private cgroupDirs(): string[] {
    const r = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '8', '-depth', '-type', 'd',
      '(', '-path', `*/${this.cgroupParent}`, '-o', '-path', `*/${this.cgroupParent}/*`, ')'], { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean);
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function killPid(pid: number, signal: NodeJS.Signals): void {
  if (!(pid > 1)) return; // 0 or -1 would signal whole groups
  try { process.kill(pid, signal); } catch { /* already gone */ }
}

/** SIGTERM, then SIGKILL after graceMs; only while the PID still names our process (its command line
 *  mentions our directory), so a recycled PID is never hit. */
async function terminate(pid: number, graceMs: number, ownDir: string): Promise<void> {
  const ours = () => alive(pid) && cmdline(pid).some((arg) => arg.includes(ownDir));
  if (!ours()) return;
  killPid(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (ours() && Date.now() < deadline) await sleep(100);
  if (ours()) killPid(pid, 'SIGKILL');
}

function cmdline(pid: number): string[] {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return []; }
}

function comm(pid: number): string {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return ''; }
}

function procPids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

function childrenOf(ppid: number): number[] {
  return procPids().filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid;
    } catch { return false; }
  });
}

function shimsOf(containerdSocket: string): number[] {
  return procPids().filter((pid) => {
    return cmdline(pid).includes(containerdSocket);
  });
}

function readPids(file: string): number[] {
  try { return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number).filter((p) => p > 1); } catch { return []; }
}

function rssMiB(pid: number): number {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch { return 0; }
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}
