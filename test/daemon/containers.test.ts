/**
 * Real containers through the daemon and the CLI: the behaviour a docker user relies on.
 * Runs as root in CI; every container, cgroup and directory is removed in afterAll.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonWithImage, TestDaemon, waitFor } from './harness.js';

const IMAGE = 'test/busybox:1';
let daemon: TestDaemon;
let scratch: string;

let destroy: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ daemon, scratch, destroy } = await daemonWithImage('ctr', IMAGE));
});

afterAll(async () => {
  await destroy?.();
});

const inspect = async (ref: string) => JSON.parse(await daemon.ok(['container', 'inspect', ref]))[0];


describe('container run', () => {
  it('runs the command as PID 1 with its own hostname, and streams its output', async () => {
    const out = await daemon.ok(['run', '--rm', '--hostname', 'box1', IMAGE, 'sh', '-c', 'echo pid=$$; hostname']);
    expect(out).toBe('pid=1\nbox1\n');
  });

  it('passes the exit code through and keeps stderr apart from stdout', async () => {
    const r = await daemon.cli(['container', 'run', '--rm', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  it('hides host processes and host network interfaces', async () => {
    const out = await daemon.ok(['run', '--rm', IMAGE, 'sh', '-c', 'ls /proc | grep -c "^[0-9]"; ls /sys/class/net']);
    const [procs, ...links] = out.trim().split('\n');
    expect(Number(procs)).toBeLessThanOrEqual(3); // sh, ls, grep
    expect(links).toEqual(['lo']);
  });

  it('removes --rm containers one after another cleanly: nothing left, no error in the daemon\'s log', async () => {
    const before = daemon.logs.length;
    for (let i = 0; i < 40; i++) await daemon.ok(['run', '--rm', IMAGE, 'true']);
    const errors = daemon.logs.slice(before).split('\n').filter((l) => /"level":(40|50|60)/.test(l));
    expect(errors).toEqual([]);
    expect(JSON.parse(await daemon.ok(['container', 'ps', '-a', '--format', 'json']))).toEqual([]);
  });

  it('passes env, working dir and user, and removes itself with --rm', async () => {
    const out = await daemon.ok(['run', '--rm', '--name', 'envcheck', '-e', 'GREETING=hi there', '-w', '/tmp', '-u', 'nobody', IMAGE,
      'sh', '-c', 'echo "$GREETING|$(pwd)|$(id -u)"']);
    expect(out).toBe('hi there|/tmp|65534\n');
    const ps = await daemon.ok(['container', 'ps', '-a', '--format', 'json']);
    expect(JSON.parse(ps).map((c: any) => c.name)).not.toContain('envcheck');
  });

  it('writes land in the container layer and leave the image untouched', async () => {
    await daemon.ok(['run', '--name', 'writer', IMAGE, 'sh', '-c', 'echo changed > /etc/image-marker; echo new > /root/new-file; rm /etc/group']);
    const c = await inspect('writer');
    const upper = join(c.bundle, 'upper');
    expect(readFileSync(join(upper, 'etc/image-marker'), 'utf8')).toBe('changed\n');
    expect(readFileSync(join(upper, 'root/new-file'), 'utf8')).toBe('new\n');
    // A second container from the same image sees the original files.
    expect(await daemon.ok(['run', '--rm', IMAGE, 'sh', '-c', 'cat /etc/image-marker; test -f /etc/group && echo group-present'])).toBe('tsswarm-test-image\ngroup-present\n');
    await daemon.ok(['container', 'rm', 'writer']);
    expect(existsSync(c.bundle)).toBe(false);
  });

  it('runs containers under Docker\'s seccomp profile, so no user namespace from inside; --security-opt seccomp=unconfined lifts it, seccomp=FILE replaces it', async () => {
    const check = 'grep "^Seccomp:" /proc/self/status | tr -d "\\t"; unshare -Ur true 2>/dev/null; echo unshare=$?';
    expect(await daemon.ok(['run', '--rm', IMAGE, 'sh', '-c', check])).toBe('Seccomp:2\nunshare=1\n');
    expect(await daemon.ok(['run', '--rm', '--security-opt', 'seccomp=unconfined', IMAGE, 'sh', '-c', check])).toBe('Seccomp:0\nunshare=0\n');
    const profile = join(scratch, 'no-mkdir.json');
    writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }));
    const r = await daemon.cli(['run', '--rm', '--security-opt', `seccomp=${profile}`, IMAGE, 'sh', '-c', 'mkdir /tmp/x; unshare -Ur true && echo userns-ok']);
    expect(r.stderr).toMatch(/Permission denied/);
    expect(r.stdout).toBe('userns-ok\n');
    const bad = await daemon.cli(['run', '--rm', '--security-opt', 'apparmor=unconfined', IMAGE, 'true']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses writes on a read-only root', async () => {
    const r = await daemon.cli(['run', '--rm', '--read-only', IMAGE, 'touch', '/etc/x']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it('OOM-kills a process over its memory limit with 137 and says so', async () => {
    const r = await daemon.cli(['run', '--name', 'oom', '--memory', '64m', IMAGE, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=128M', 'count=1']);
    expect(r.code).toBe(137);
    const c = await inspect('oom');
    expect(c.state.oomKilled).toBe(true);
    expect(c.state.exitCode).toBe(137);
    await daemon.ok(['container', 'rm', 'oom']);
  });

  it('holds a fork bomb at the pids limit', async () => {
    await daemon.ok(['run', '-d', '--name', 'bomb', '--pids-limit', '32', IMAGE, 'sh', '-c', 'f(){ f|f& }; f 2>/dev/null; exec sleep 3600']);
    const c = await inspect('bomb');
    const pidsDir = join('/sys/fs/cgroup/pids', daemon.cgroupParent, c.id);
    expect(readFileSync(join(pidsDir, 'pids.max'), 'utf8').trim()).toBe('32');
    await new Promise((r) => setTimeout(r, 1500));
    expect(Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8'))).toBeLessThanOrEqual(32);
    expect(readFileSync(join(pidsDir, 'pids.events'), 'utf8')).toMatch(/max [1-9]/);
    await daemon.ok(['container', 'rm', '-f', 'bomb']);
    expect(existsSync(pidsDir)).toBe(false);
  });

  it('applies a CPU quota', async () => {
    await daemon.ok(['run', '-d', '--name', 'cpu', '--cpus', '0.5', IMAGE, 'sleep', '60']);
    const c = await inspect('cpu');
    expect(readFileSync(join('/sys/fs/cgroup/cpu', daemon.cgroupParent, c.id, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000');
    await daemon.ok(['container', 'rm', '-f', 'cpu']);
  });
});

describe('container lifecycle', () => {
  it('pauses (frozen) and unpauses (thawed)', async () => {
    await daemon.ok(['run', '-d', '--name', 'frz', IMAGE, 'sleep', '3600']);
    const c = await inspect('frz');
    const freezer = join('/sys/fs/cgroup/freezer', daemon.cgroupParent, c.id, 'freezer.state');
    await daemon.ok(['container', 'pause', 'frz']);
    expect((await inspect('frz')).state.status).toBe('paused');
    expect(readFileSync(freezer, 'utf8').trim()).toBe('FROZEN');
    await daemon.ok(['container', 'unpause', 'frz']);
    expect((await inspect('frz')).state.status).toBe('running');
    expect(readFileSync(freezer, 'utf8').trim()).toBe('THAWED');
    await daemon.ok(['container', 'rm', '-f', 'frz']);
  });

  it('stop sends SIGTERM and escalates to SIGKILL after the timeout', async () => {
    // PID 1 without a handler ignores SIGTERM, so only the SIGKILL can end it.
    await daemon.ok(['run', '-d', '--name', 'stubborn', IMAGE, 'sleep', '3600']);
    const t0 = Date.now();
    await daemon.ok(['container', 'stop', '-t', '1', 'stubborn']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    const c = await inspect('stubborn');
    expect(c.state.status).toBe('exited');
    expect(c.state.exitCode).toBe(137);
    // A process that handles SIGTERM stops at once with its own code.
    await daemon.ok(['run', '-d', '--name', 'polite', IMAGE, 'sh', '-c', 'trap "exit 42" TERM; while true; do sleep 0.1; done']);
    await new Promise((r) => setTimeout(r, 300));
    await daemon.ok(['container', 'stop', '-t', '10', 'polite']);
    expect((await inspect('polite')).state.exitCode).toBe(42);
    await daemon.ok(['container', 'rm', 'stubborn', 'polite']);
  });

  it('captures logs and follows them', async () => {
    await daemon.ok(['run', '-d', '--name', 'talker', IMAGE, 'sh', '-c', 'for i in 1 2 3; do echo line$i; done; echo oops >&2; sleep 0.5; echo late']);
    const followed = await daemon.cli(['container', 'logs', '-f', 'talker']);
    expect(followed.stdout).toBe('line1\nline2\nline3\nlate\n');
    expect(followed.stderr).toBe('oops\n');
    expect((await daemon.ok(['container', 'logs', '--tail', '1', 'talker']))).toBe('late\n');
    await daemon.ok(['container', 'rm', 'talker']);
  });

  it('runs exec in a running container', async () => {
    await daemon.ok(['run', '-d', '--name', 'execd', '--hostname', 'exechost', IMAGE, 'sleep', '3600']);
    expect(await daemon.ok(['container', 'exec', 'execd', 'sh', '-c', 'hostname; echo $$ > /dev/null; ls /proc/1/exe >/dev/null && echo ok'])).toBe('exechost\nok\n');
    const r = await daemon.cli(['container', 'exec', 'execd', 'sh', '-c', 'exit 5']);
    expect(r.code).toBe(5);
    await daemon.ok(['container', 'rm', '-f', 'execd']);
  });

  it('restarts on failure up to the retry count', async () => {
    await daemon.ok(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', IMAGE, 'sh', '-c', 'exit 1']);
    const c = await waitFor('two restarts then exit', async () => {
      const s = await inspect('flaky');
      return s.state.status === 'exited' && s.state.restartCount === 2 ? s : undefined;
    });
    expect(c.state.exitCode).toBe(1);
    await daemon.ok(['container', 'rm', 'flaky']);
  });

  it('adopts running containers after the daemon is killed with SIGKILL', async () => {
    await daemon.ok(['run', '-d', '--name', 'survivor', IMAGE, 'sh', '-c', 'echo before; sleep 3600']);
    await daemon.ok(['run', '-d', '--name', 'finisher', IMAGE, 'sh', '-c', 'sleep 1; exit 9']);
    const before = await inspect('survivor');
    await daemon.crash();
    await new Promise((r) => setTimeout(r, 1500)); // finisher exits while no daemon runs
    expect(() => process.kill(before.state.pid, 0)).not.toThrow();
    await daemon.start();
    const after = await inspect('survivor');
    expect(after.state.status).toBe('running');
    expect(after.state.pid).toBe(before.state.pid);
    expect((await inspect('finisher')).state).toMatchObject({ status: 'exited', exitCode: 9 });
    expect(await daemon.ok(['container', 'logs', 'survivor'])).toBe('before\n');
    await daemon.ok(['container', 'stop', '-t', '0', 'survivor']);
    expect((await inspect('survivor')).state.status).toBe('exited');
    await daemon.ok(['container', 'rm', 'survivor', 'finisher']);
  });
});

describe('bad input', () => {
  it.each([
    [['run', '--rm', '--pull', 'never', 'no/such:image'], /No such image: no\/such:image/],
    [['run', '--rm', '127.0.0.1:9/no/such:image'], /cannot connect to registry 127.0.0.1:9/],
    [['run', '--rm', '--memory', 'lots', IMAGE, 'true'], /invalid value "lots" for --memory/],
    [['run', '--rm', '--memory', '1k', IMAGE, 'true'], /minimum memory limit/],
    [['run', '--rm', '--restart', 'sometimes', IMAGE, 'true'], /invalid restart policy/],
    [['run', '--rm', '-v', 'relative:/x', IMAGE, 'true'], /absolute host path/],
    [['run', '--rm', '-u', 'ghost', IMAGE, 'true'], /unable to find user ghost/],
    [['container', 'stop', 'nonexistent'], /No such container: nonexistent/],
    [['container', 'inspect', 'nonexistent'], /No such container/],
    [['image', 'rm', 'no/such:image'], /./],
  ])('%j gets one clear line and a non-zero exit', async (args, message) => {
    const r = await daemon.cli(args as string[]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a name in use and a command-less image, and the daemon keeps its state', async () => {
    await daemon.ok(['run', '-d', '--name', 'taken', IMAGE, 'sleep', '60']);
    const r = await daemon.cli(['run', '-d', '--name', 'taken', IMAGE, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/name "\/taken" is already in use/);
    const noCmd = await daemon.cli(['run', '--rm', IMAGE]);
    expect(noCmd.stderr).toMatch(/no command specified/);
    expect((await inspect('taken')).state.status).toBe('running');
    await daemon.ok(['container', 'rm', '-f', 'taken']);
    const info = JSON.parse(await daemon.ok(['--format', 'json', 'info']));
    expect(info.pid).toBe(daemon.pid);
  });

  it('reports an unreachable daemon in one line', async () => {
    const r = await daemon.cli(['-H', 'unix:///nonexistent/tsswarm.sock', 'container', 'ps']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot connect to the tsswarm daemon/);
  });
});
