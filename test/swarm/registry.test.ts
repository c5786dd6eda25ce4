/**
 * A swarm ships its images through a registry: workers that never saw an image pull it when their
 * task is prepared, services pin the digest their tag names, and a private registry's credentials
 * reach the nodes only with --with-registry-auth. Three daemons on loopback and Debian's
 * docker-registry (one open, one behind htpasswd).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { htpasswdFile, startRegistry, type RunningRegistry } from '../../testkit/registry.js';
import { busyboxTarball, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const BASE_PORT = 20000 + (process.pid % 500) * 4;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;
const daemons: TestDaemon[] = [];
let manager: TestDaemon;
let workers: TestDaemon[];
let scratch: string;
let open: RunningRegistry;
let locked: RunningRegistry;

beforeAll(async () => {
  scratch = tempDir('swarm-registry');
  mkdirSync(join(scratch, 'open'));
  mkdirSync(join(scratch, 'locked'));
  open = await startRegistry(join(scratch, 'open'));
  locked = await startRegistry(join(scratch, 'locked'), { htpasswd: htpasswdFile(join(scratch, 'htpasswd'), 'bob', 'hunter2') });
  for (let i = 0; i < 3; i++) {
    const d = new TestDaemon(`swr${i}`, 'tsswarm', ['--listen-addr', addr(i), '--hostname', `reg${i}`, '--registry-config', join(scratch, `config${i}`)]);
    daemons.push(d);
    await d.start();
  }
  [manager, ...workers] = daemons as [TestDaemon, ...TestDaemon[]];
  // Only the manager has the image, and only to push it: the workers must get it from the registry.
  await manager.ok(['image', 'import', await busyboxTarball(scratch), `${open.addr}/shop/web:1`]);
  await manager.ok(['image', 'push', `${open.addr}/shop/web:1`]);
  await manager.ok(['image', 'tag', `${open.addr}/shop/web:1`, `${locked.addr}/team/app:1`]);
  await manager.ok(['login', '-u', 'bob', '-p', 'hunter2', locked.addr]);
  await manager.ok(['image', 'push', `${locked.addr}/team/app:1`]);
  await manager.ok(['swarm', 'init', '--advertise-addr', addr(0), '--dispatcher-heartbeat', '500ms']);
  await manager.ok(['node', 'update', '--availability', 'drain', 'reg0']);
  const token = (await manager.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
  for (const [i, w] of workers.entries()) await w.ok(['swarm', 'join', '--token', token, '--listen-addr', addr(i + 1), addr(0)]);
  await waitFor('three ready nodes', async () => {
    const nodes = JSON.parse(await manager.ok(['node', 'ls', '--format', 'json'])) as { status: { state: string } }[];
    return nodes.filter((n) => n.status.state === 'ready').length === 3 ? true : undefined;
  }, 20_000);
}, 180_000);

afterAll(async () => {
  for (const s of ['web', 'ghost', 'private', 'private-auth']) await manager?.cli(['service', 'rm', s]);
  for (const d of daemons) await d.destroy();
  await open?.stop();
  await locked?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function tasks(service: string): Promise<any[]> {
  return JSON.parse(await manager.ok(['service', 'ps', '--format', 'json', '-f', 'desired-state=running', service]));
}

describe('a swarm and its registry', () => {
  it('pins the tag to its digest, and workers that never had the image pull it and run it', async () => {
    await manager.ok(['service', 'create', '--name', 'web', '--replicas', '4', '-d', `${open.addr}/shop/web:1`, 'sleep', '3600']);
    const [service] = JSON.parse(await manager.ok(['service', 'inspect', 'web'])) as any[];
    expect(service.spec.task.image).toMatch(new RegExp(`^${open.addr}/shop/web:1@sha256:[0-9a-f]{64}$`));
    await waitFor('4 running replicas', async () => ((await tasks('web')).filter((t) => t.status.state === 'running').length === 4 ? true : undefined), 60_000);
    for (const w of workers) {
      const [img] = JSON.parse(await w.ok(['image', 'inspect', service.spec.task.image])) as any[];
      expect(img.RepoDigests).toContain(`${open.addr}/shop/web@${service.spec.task.image.split('@')[1]}`);
    }
  });

  it('shows the registry\'s answer as the task\'s error when the image is not there', async () => {
    await manager.ok(['service', 'create', '--name', 'ghost', '--replicas', '1', '-d', `${open.addr}/shop/ghost:9`, 'true']);
    const rejected = await waitFor('a rejected task', async () => (await tasks('ghost')).find((t) => t.status.state === 'rejected') ?? undefined, 30_000);
    expect(rejected.status.error).toMatch(/No such image: .*shop\/ghost:9/);
    const table = await manager.ok(['service', 'ps', '--no-trunc', 'ghost']);
    expect(table).toMatch(/No such image/);
  });

  it('gives a private registry\'s credentials to the nodes only with --with-registry-auth, and never back to clients', async () => {
    const image = `${locked.addr}/team/app:1`;
    await manager.ok(['service', 'create', '--name', 'private', '--replicas', '1', '-d', image, 'sleep', '3600']);
    const refused = await waitFor('an unauthorized task', async () => (await tasks('private')).find((t) => t.status.state === 'rejected') ?? undefined, 30_000);
    expect(refused.status.error).toMatch(/unauthorized/);

    await manager.ok(['service', 'create', '--name', 'private-auth', '--replicas', '2', '--with-registry-auth', '-d', image, 'sleep', '3600']);
    await waitFor('2 running private replicas', async () => ((await tasks('private-auth')).filter((t) => t.status.state === 'running').length === 2 ? true : undefined), 60_000);
    const everything = [
      await manager.ok(['service', 'inspect', 'private-auth']),
      await manager.ok(['service', 'ls', '--format', 'json']),
      await manager.ok(['service', 'ps', '--format', 'json', 'private-auth']),
    ].join('\n');
    expect(everything).not.toContain('hunter2');
    expect(everything).not.toMatch(/"username": "bob"/);
  });
});
