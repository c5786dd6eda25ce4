/**
 * registry: images travel through a registry on a test host instead of being imported on every
 * host. Only the first host (the manager, drained) has the busybox image; it pushes it to a registry
 * running on its own address, and a service of 6 replicas on the other hosts pulls it. A second tag
 * (the same base layer plus a small one, and RELEASE=2 in its config) rolls out by pulling only what
 * is new. Then the registry is stopped by PID: a killed container comes back, and a forced restart of
 * every task completes, from the images the nodes already have.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeOciLayout, tarDir } from '../../testkit/images.js';
import { DEFAULT_PATH } from '../../src/engine/images/image-config.js';
import { IMAGE, type Cluster, type Host } from '../harness.js';
import { insecureRegistryArgs, startHostRegistry, type HostRegistry } from '../registry.js';
import { runningTasks, waitConverged, withCluster, type Scenario } from './common.js';

const REPLICAS = 6;
/** A task that stops at once on SIGTERM (a bare `sleep` as PID 1 ignores it and waits out the grace period). */
const WORK = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
const seconds = (since: number) => Math.round((Date.now() - since) / 100) / 10;

/**
 * Writes an OCI layout of IMAGE's rootfs (the very tarball the first host imported, so the same
 * layer digest) plus a layer with /etc/release, and RELEASE=2 in the config; loaded as `<dir>:2`.
 */
function releaseLayout(c: Cluster): string {
  const top = join(c.workDir, 'release-layer');
  mkdirSync(join(top, 'etc'), { recursive: true });
  writeFileSync(join(top, 'etc/release'), '2\n');
  const layout = join(c.workDir, 'busybox-release');
  writeOciLayout(layout, [{ file: c.imageTarball }, { file: tarDir(top, join(c.workDir, 'release-layer.tar')) }],
    { tag: '2', config: { Env: [DEFAULT_PATH, 'RELEASE=2'] } });
  return layout;
}

/** The hosts whose image store is not empty. */
async function hostsWithImages(hosts: Host[]): Promise<string[]> {
  const found = await Promise.all(hosts.map(async (h) => ((await h.ok(['image', 'ls', '-q'])).trim() ? h.name : '')));
  return found.filter(Boolean);
}

/** Waits until `replicas` tasks run, every one of `image` (a tag: the spec carries it pinned, `tag@sha256:...`). */
function waitImage(c: Cluster, via: Host, image: string, timeoutMs: number) {
  return c.waitFor(`${REPLICAS} tasks of ${image}`, async () => {
    const tasks = await runningTasks(via, 'web');
    return tasks.length === REPLICAS && tasks.every((t) => t.image.startsWith(`${image}@sha256:`)) ? tasks : undefined;
  }, timeoutMs, 100);
}

/** Tasks the workers rejected (an image they could not get is a rejection), over the service's life. */
async function rejectedTasks(via: Host): Promise<string[]> {
  const { tasks } = await via.control<{ tasks: any[] }>('ListTasks', { serviceId: 'web' });
  return tasks.filter((t) => t.status.state === 'rejected').map((t) => `${t.id}: ${t.status.error ?? t.status.message ?? ''}`);
}

/** Kills one replica's container on its node and waits for its slot to run again, on a new task. */
async function killOneAndWait(c: Cluster, m: Host): Promise<{ node: string; seconds: number }> {
  const [victim] = await runningTasks(m, 'web');
  if (!victim) throw new Error('no running task to kill');
  const t0 = Date.now();
  await c.host(victim.node).ok(['container', 'kill', victim.containerId]);
  await c.waitFor(`slot ${victim.slot} to run again`, async () => {
    const tasks = await runningTasks(m, 'web');
    return tasks.length === REPLICAS && !tasks.some((t) => t.id === victim.id) ? true : undefined;
  }, 30_000, 100);
  return { node: victim.node, seconds: seconds(t0) };
}

/** Pushes IMAGE as `<registry>/demo/busybox:1` and the release layout as `:2` from the first host. */
async function pushImages(m: Host, reg: HostRegistry, layout: string): Promise<{ v1: string; v2: string }> {
  const v1 = `${reg.addr}/demo/busybox:1`;
  const v2 = `${reg.addr}/demo/busybox:2`;
  await m.ok(['image', 'tag', IMAGE, v1]);
  await m.ok(['image', 'push', v1]);
  await m.ok(['image', 'load', '-i', layout]);
  await m.ok(['image', 'tag', 'busybox-release:2', v2]);
  await m.ok(['image', 'push', v2]);
  return { v1, v2 };
}

export const registry: Scenario = {
  description: 'a registry on a test host: 6 replicas pull their image, an update pulls the new tag, the registry stops and tasks still restart',
  inAll: true,
  run: (opts) => withCluster(opts, { hosts: opts.hosts ?? 7, managers: 1, heartbeat: '1s', loadImage: 'first', daemonArgs: insecureRegistryArgs(1) }, async (c) => {
    const log = opts.log ?? (() => {});
    const [m, ...others] = c.hosts as [Host, ...Host[]];
    const reg = await startHostRegistry(c, m);
    await m.ok(['node', 'update', '--availability', 'drain', m.name]);
    const { v1, v2 } = await pushImages(m, reg, releaseLayout(c));
    const pushed = reg.traffic();
    const seeded = await hostsWithImages(others);
    log(`pushed ${v1} and ${v2} from ${m.name}; hosts with any image besides ${m.name}: ${seeded.length ? seeded.join(',') : 'none'}`);

    let t0 = Date.now();
    await m.ok(['service', 'create', '-d', '--name', 'web', '--replicas', String(REPLICAS), '--restart-delay', '0s', '--update-parallelism', '2', v1, ...WORK]);
    const created = await waitImage(c, m, v1, 60_000);
    const createS = seconds(t0);
    const afterCreate = reg.traffic();
    const pullers = Object.keys(afterCreate.byClient).filter((ip) => ip !== m.ip && (afterCreate.byClient[ip] ?? 0) > (pushed.byClient[ip] ?? 0));
    log(`${REPLICAS} replicas of ${v1} running after ${createS} s on ${created.map((t) => t.node).sort().join(',')}; ${pullers.length} hosts pulled, ${afterCreate.bytesServed - pushed.bytesServed} bytes served`);

    t0 = Date.now();
    await m.ok(['service', 'update', '-d', '--image', v2, 'web']);
    await waitImage(c, m, v2, 60_000);
    const updateS = seconds(t0);
    const afterUpdate = reg.traffic();
    log(`rolled to ${v2} in ${updateS} s; ${afterUpdate.bytesServed - afterCreate.bytesServed} bytes served for it`);

    await reg.stop();
    const registryGone = !existsSync(`/proc/${reg.pid}`);
    const killed = await killOneAndWait(c, m);
    log(`registry stopped; a container killed on ${killed.node} was replaced in ${killed.seconds} s`);
    t0 = Date.now();
    const before = new Set((await runningTasks(m, 'web')).map((t) => t.id));
    await m.ok(['service', 'update', '-d', '--force', 'web']);
    const forced = await c.waitFor('every task replaced without the registry', async () => {
      const tasks = await runningTasks(m, 'web');
      return tasks.length === REPLICAS && tasks.every((t) => !before.has(t.id)) ? tasks : undefined;
    }, 60_000, 100);
    const forceS = seconds(t0);
    const rejected = await rejectedTasks(m);
    log(`forced restart of every task without the registry: ${forced.length} running after ${forceS} s; rejected tasks over the run: ${rejected.length}`);
    for (const r of rejected.slice(0, 3)) log(`rejected: ${r}`);

    const pass = registryGone && seeded.length === 0 && pullers.length === new Set(created.map((t) => t.node)).size && forced.length === REPLICAS && rejected.length === 0;
    return {
      scenario: 'registry', pass, hosts: c.hosts.length, registry_host: m.name, replicas: REPLICAS,
      hosts_seeded_before: seeded.length, hosts_that_pulled: pullers.length,
      create_to_all_running_s: createS, rolling_update_s: updateS,
      registry_process_gone: registryGone, running_after_registry_stopped: forced.length, killed_task_replaced_s: killed.seconds, forced_restart_without_registry_s: forceS,
      rejected_tasks: rejected.length,
      registry_bytes_served: { create: afterCreate.bytesServed - pushed.bytesServed, update: afterUpdate.bytesServed - afterCreate.bytesServed, total: afterUpdate.bytesServed },
    };
  }),
};
