/**
 * ContainerManager on the real runtime and shim:
 * - a container's exit is seen even when no inotify event announces it: the kernel drops events when
 *   the daemon's inotify queue overflows (a container logging fast while the event loop is busy did
 *   that). The manager runs with its watches off here, so only the sweep can notice the exits;
 * - health checks run in the container and are killed at their timeout.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '../images/index.js';
import { busyboxRootfs, makeTempDir, removeTempDir } from '../../../testkit/images.js';
import { nativeDir, RuntimeDriver } from '../runtime/driver.js';
import { startCommandLauncher, stopCommandLauncher } from '../../launcher/command-launcher.js';
import { runtimeStateRoot } from '../runtime/state-root.js';
import { ContainerManager } from './manager.js';
import { withSpecDefaults } from '../../api/container-spec.js';
import type { ContainerSpec } from '../../api/container.js';

const CGROUP_PARENT = `tsswarm-test-sweep-${process.pid}`;
let work: string;
let manager: ContainerManager;

beforeAll(async () => {
  work = makeTempDir();
  const dataDir = join(work, 'data');
  const images = await ImageStore.open(join(dataDir, 'images'));
  await images.importRootfs(busyboxRootfs(join(work, 'busybox.tar')), 'sweep/busybox:1');
  manager = await ContainerManager.open({
    dataDir, images, runtime: new RuntimeDriver('tsswarm', runtimeStateRoot(dataDir)), cgroupParent: CGROUP_PARENT,
    log: pino({ level: 'silent' }), watchExits: false, exitSweepMs: 100,
  });
});

afterAll(async () => {
  for (const c of manager?.list(true) ?? []) await manager.remove(c.id, true).catch(() => {});
  manager?.close();
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', controller, CGROUP_PARENT);
    if (!existsSync(dir)) continue;
    for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) try { rmdirSync(join(dir, child.name)); } catch { /* reported by the test */ }
    try { rmdirSync(dir); } catch { /* see above */ }
  }
  if (work) {
    rmSync(runtimeStateRoot(join(work, 'data')), { recursive: true, force: true });
    removeTempDir(work);
  }
});

const spec = (cmd: string[]) => withSpecDefaults({ image: 'sweep/busybox:1', cmd }) as unknown as ContainerSpec;

describe('exits without inotify', () => {
  it('a container that exits by itself is recorded with its code', async () => {
    const c = await manager.create(spec(['sh', '-c', 'sleep 0.3; exit 3']));
    await manager.start(c.id);
    const exit = await manager.wait(c.id);
    expect(exit.exitCode).toBe(3);
    expect(manager.get(c.id).state).toMatchObject({ status: 'exited', exitCode: 3 });
  });

  it('a container that is killed is recorded as exited', async () => {
    const c = await manager.create(spec(['sleep', '60']));
    await manager.start(c.id);
    expect(manager.get(c.id).state.status).toBe('running');
    await manager.kill(c.id, 'SIGKILL');
    const exit = await manager.wait(c.id);
    expect(exit.exitCode).toBe(137);
    expect(manager.get(c.id).state.status).toBe('exited');
  });
});

describe.each(['forked by tsswarm-launcher', 'spawned by the daemon'])('health check commands, %s', (how) => {
  beforeAll(() => {
    if (how.includes('launcher')) startCommandLauncher(join(nativeDir(), 'tsswarm-launcher'), () => {});
  });
  afterAll(() => stopCommandLauncher());

  it('pass on exit 0, fail otherwise, and a hung one is killed at its timeout', async () => {
    const c = await manager.create(spec(['sleep', '60']));
    await manager.start(c.id);
    expect(await manager.check(c.id, ['sh', '-c', 'test -d /proc/1'], 5000)).toBe(true);
    expect(await manager.check(c.id, ['sh', '-c', 'exit 1'], 5000)).toBe(false);
    expect(await manager.check(c.id, ['no-such-command'], 5000)).toBe(false);
    const t0 = Date.now();
    expect(await manager.check(c.id, ['sleep', '30'], 300)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(5000);
    // The hung check is gone from the container, not left behind.
    await new Promise((r) => setTimeout(r, 200));
    const leftover = await manager.check(c.id, ['sh', '-c', '! ps -o args | grep -q "^sleep 30"'], 5000);
    expect(leftover).toBe(true);
    await manager.kill(c.id, 'SIGKILL');
    await manager.wait(c.id);
    expect(await manager.check(c.id, ['true'], 5000)).toBe(false); // not running
  });
});
