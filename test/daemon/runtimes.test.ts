/** The worker can be told --runtime runc|crun: the same containers run unchanged under each. */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxTarball, tempDir, TestDaemon } from './harness.js';

const IMAGE = 'test/busybox:1';
let scratch: string;
let tarball: string;

beforeAll(async () => {
  scratch = tempDir('runtimes');
  tarball = await busyboxTarball(scratch);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.each(['runc', 'crun'])('daemon --runtime %s', (runtime) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = new TestDaemon(runtime, runtime);
    await daemon.start();
    await daemon.ok(['image', 'import', tarball, IMAGE]);
  });
  afterAll(async () => { await daemon?.destroy(); });

  it('runs a container with its hostname, exit code and memory limit', async () => {
    const r = await daemon.cli(['run', '--name', 'probe', '--hostname', `on-${runtime}`, '--memory', '64m', IMAGE,
      'sh', '-c', 'hostname; echo $$; cat /proc/self/cgroup | grep -c memory; exit 4']);
    expect(r.code).toBe(4);
    const [host, pid] = r.stdout.split('\n');
    expect(host).toBe(`on-${runtime}`);
    expect(pid).toBe('1');
    await daemon.ok(['container', 'rm', 'probe']);
  });

  it('pauses, stops and removes a detached container', async () => {
    await daemon.ok(['run', '-d', '--name', 'bg', '--memory', '32m', IMAGE, 'sleep', '3600']);
    const c = JSON.parse(await daemon.ok(['container', 'inspect', 'bg']))[0];
    expect(readFileSync(join('/sys/fs/cgroup/memory', daemon.cgroupParent, c.id, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(32 << 20));
    await daemon.ok(['container', 'pause', 'bg']);
    await daemon.ok(['container', 'unpause', 'bg']);
    await daemon.ok(['container', 'stop', '-t', '0', 'bg']);
    expect(JSON.parse(await daemon.ok(['container', 'inspect', 'bg']))[0].state.exitCode).toBe(137);
    await daemon.ok(['container', 'rm', 'bg']);
  });
});
