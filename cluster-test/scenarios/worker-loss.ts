/**
 * worker-loss: a worker host loses power (cut off from everyone, its daemon and containers
 * killed); its tasks must run elsewhere within the heartbeat timeout plus scheduling. Default
 * heartbeats. When the host comes back, the service still has exactly its replicas.
 */
import { IMAGE } from '../harness.js';
import { round } from './leader-kill.js';
import { runningTasks, sleep, TARGETS, waitConverged, withCluster, type Scenario } from './common.js';

export const workerLoss: Scenario = {
  description: 'power loss of a worker host; time until its tasks run elsewhere (default heartbeats)',
  inAll: true,
  run: (opts) => withCluster(opts, {}, async (c) => {
    const log = opts.log ?? (() => {});
    const m = c.hosts[0]!;
    const replicas = c.workers().length;
    await m.ok(['service', 'create', '-d', '--name', 'web', '--replicas', String(replicas), '--constraint', 'node.role==worker', IMAGE, 'sleep', '3600']);
    const before = await waitConverged(c, m, 'web', replicas);
    const victim = c.host(before[0]!.node);
    const lostTasks = before.filter((t) => t.node === victim.name).map((t) => t.id);
    const info = await m.control<any>('ListNodes', {});
    log(`web runs on ${before.map((t) => t.node).sort().join(',')}; powering off ${victim.name} (${lostTasks.length} task(s)); ${info.nodes.length} nodes`);
    const t0 = Date.now();
    await c.powerOff(victim);
    const down = c.waitFor(`${victim.name} marked down`, async () => {
      const { nodes } = await m.control<{ nodes: any[] }>('ListNodes', {});
      return nodes.find((n) => n.description.hostname === victim.name)?.status.state === 'down' ? Date.now() : undefined;
    }, 60_000, 100);
    const replaced = await c.waitFor('the lost tasks replaced on the other workers', async () => {
      const ts = await runningTasks(m, 'web');
      return ts.length === replicas && ts.every((t) => t.node !== victim.name) ? ts : undefined;
    }, 60_000, 100);
    const replacedS = (Date.now() - t0) / 1000;
    const downS = ((await down) - t0) / 1000;
    log(`${victim.name} marked down after ${downS.toFixed(2)} s; its tasks running elsewhere after ${replacedS.toFixed(2)} s (on ${replaced.map((t) => t.node).sort().join(',')})`);
    await c.powerOn(victim);
    await c.waitFor(`${victim.name} ready again`, async () => {
      const { nodes } = await m.control<{ nodes: any[] }>('ListNodes', {});
      return nodes.find((n) => n.description.hostname === victim.name)?.status.state === 'ready' ? true : undefined;
    }, 60_000);
    await sleep(3000);
    const after = await runningTasks(m, 'web');
    const containers = (await Promise.all(c.workers().map(async (w) => (await w.cli(['container', 'ps', '-q'])).stdout.split('\n').filter(Boolean).length))).reduce((a, b) => a + b, 0);
    log(`after ${victim.name} came back: ${after.length} running tasks, ${containers} containers on the workers`);
    // Pass: the tasks ran elsewhere and nothing is duplicated when the worker returns; the time is a target.
    const pass = after.length === replicas && containers === replicas;
    return {
      scenario: 'worker-loss', pass, targets_met: replacedS < TARGETS.worker_loss_to_running_s, heartbeat: 'default', victim: victim.name, tasks_lost: lostTasks.length,
      node_down_s: round(downS), worker_loss_to_running_s: round(replacedS), running_after_return: after.length, containers_after_return: containers,
      targets: { worker_loss_to_running_s: `< ${TARGETS.worker_loss_to_running_s}` },
    };
  }),
};
