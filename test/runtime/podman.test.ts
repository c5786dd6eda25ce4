// A real OCI client drives the runtime: podman (Debian's) with `--runtime tsswarm-runtime`, and
// runc beside it on the same commands. podman's storage is a temp dir of its own; every container
// runs with --network none (no netavark, no firewall rules). Root here lacks CAP_SYS_RESOURCE, so the
// rlimits podman raises by default are lowered instead (runc refuses podman's defaults here too).
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNative, makeRootfs, RUNTIME, sh, tempDir, umountAll } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const which = (b: string) => sh('sh', ['-c', `command -v ${b}`]).stdout.trim();
const IMAGE = 'localhost/tsswarm-test-busybox:1';
const RUN = ['--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];

describe.skipIf(!isRoot || !which('podman'))('podman drives tsswarm-runtime', () => {
  let store = '';
  // From the store dir: conmon 2.1 writes its `oom` marker to its working directory here.
  const podman = (runtime: string, args: string[], timeout = 60_000) => {
    const r = spawnSync('podman', [
      '--root', join(store, 'root'), '--runroot', join(store, 'runroot'), '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file', '--runtime', runtime, ...args,
    ], { cwd: store, encoding: 'utf8', timeout });
    if (r.error) throw r.error;
    return { status: r.status ?? 129, stdout: r.stdout, stderr: r.stderr };
  };
  const runtimes = () => [RUNTIME, ...(which('runc') ? [which('runc')] : [])];

  beforeAll(() => {
    buildNative();
    store = tempDir('tsswarm-podman-test-');
    makeRootfs(store);
    const r = podman(RUNTIME, ['import', join(store, 'rootfs.tar'), IMAGE]);
    expect(r.status, r.stderr).toBe(0);
  });

  afterAll(() => {
    if (!store) return;
    podman(RUNTIME, ['rm', '-af']);
    podman(RUNTIME, ['rmi', '-af']);
    umountAll(store);
    execFileSync('rm', ['-rf', store]);
  });

  it('run --rm passes the exit code, the env and podman\'s seccomp profile through, as with runc', () => {
    for (const rt of runtimes()) {
      const r = podman(rt, ['run', '--rm', ...RUN, '-e', 'GREETING=hi there', IMAGE, 'sh', '-c', 'echo "$GREETING"; grep ^Seccomp: /proc/self/status; cat /proc/sys/net/ipv4/ping_group_range; exit 3']);
      expect(r.status, `${rt}: ${r.stderr}`).toBe(3);
      expect(r.stdout.split('\n').slice(0, 2), rt).toEqual(['hi there', 'Seccomp:\t2']);
      expect(r.stdout.split('\n')[2]!.trim().split(/\s+/), rt).toEqual(['0', '0']); // podman's linux.sysctl
    }
  });

  it('a container over its memory limit is OOM-killed: exit 137, and podman reports it as it does with runc', () => {
    const seen: string[] = [];
    for (const rt of runtimes()) {
      const name = `tsswarm-oom-${process.pid}-${seen.length}`;
      const r = podman(rt, ['run', '--name', name, ...RUN, '--memory', '64m', IMAGE, 'sh', '-c', 'dd if=/dev/zero of=/dev/null bs=128M count=1']);
      expect(r.status, `${rt}: ${r.stderr}`).toBe(137);
      seen.push(podman(rt, ['inspect', name, '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}']).stdout.trim());
      podman(rt, ['rm', '-f', name]);
    }
    expect(seen[0]).toMatch(/^137 /);
    if (seen.length > 1) expect(seen[0]).toBe(seen[1]);
  });

  it('run -d, exec (exit code passed through), pause/unpause, stop and rm go through the runtime and leave nothing', () => {
    const name = `tsswarm-life-${process.pid}`;
    const d = podman(RUNTIME, ['run', '-d', '--name', name, ...RUN, IMAGE, 'sleep', '300']);
    expect(d.status, d.stderr).toBe(0);
    const id = d.stdout.trim();
    const e = podman(RUNTIME, ['exec', name, 'sh', '-c', 'echo in $(hostname); exit 5']);
    expect(e.status, e.stderr).toBe(5);
    expect(e.stdout).toBe(`in ${id.slice(0, 12)}\n`);
    const status = () => podman(RUNTIME, ['inspect', name, '--format', '{{.State.Status}}']).stdout.trim();
    expect(podman(RUNTIME, ['pause', name]).status).toBe(0);
    expect(status()).toBe('paused');
    expect(JSON.parse(sh(RUNTIME, ['state', id]).stdout).status).toBe('paused');
    expect(podman(RUNTIME, ['unpause', name]).status).toBe(0);
    expect(status()).toBe('running');
    expect(podman(RUNTIME, ['stop', '-t', '1', name]).status).toBe(0);
    expect(podman(RUNTIME, ['inspect', name, '--format', '{{.State.Status}} {{.State.ExitCode}}']).stdout.trim()).toBe('exited 137');
    expect(podman(RUNTIME, ['rm', name]).status).toBe(0);
    expect(sh(RUNTIME, ['state', id]).stderr).toMatch(/does not exist/);
    expect(podman(RUNTIME, ['ps', '-a', '--format', '{{.Names}}']).stdout).not.toContain(name);
  });
});
