/**
 * power-cycle: every daemon killed at once, then all restarted. The same services and tasks come
 * back, and running containers are adopted, not duplicated: the same container ids, one per task.
 */
import { IMAGE } from '../harness.js';
import { round } from './leader-kill.js';
import { containersOn, runningTasks, sleep, waitConverged, withCluster, type Scenario } from './common.js';

export const powerCycle: Scenario = {
  description: 'kill every daemon at once, restart them all: same state, containers adopted',
  inAll: true,
  run: (opts) => withCluster(opts, { heartbeat: '1s' }, async (c) => {
    const log = opts.log ?? (() => {});
    const m = c.hosts[0]!;
    await m.ok(['service', 'create', '-d', '--name', 'web', '--replicas', '6', IMAGE, 'sleep', '3600']);
    await m.ok(['service', 'create', '-d', '--name', 'idle', '--replicas', '0', IMAGE, 'sleep', '3600']);
    const before = await waitConverged(c, m, 'web', 6);
    const servicesBefore = (await m.control<{ services: any[] }>('ListServices', {})).services.map((s) => `${s.service.id}:${s.service.meta.version}`).sort();
    const containersBefore = (await Promise.all(c.hosts.map(containersOn))).flat().sort();
    log(`before: web on ${before.map((t) => t.node).sort().join(',')}, ${containersBefore.length} containers`);
    const t0 = Date.now();
    await Promise.all(c.hosts.map((h) => h.kill()));
    log('every daemon killed (kill -9)');
    await sleep(1000);
    await Promise.all(c.hosts.map((h) => h.start()));
    const tStart = Date.now();
    const leader = await c.leader({ timeoutMs: 60_000, pollMs: 50 });
    const leaderS = (Date.now() - tStart) / 1000;
    const after = await waitConverged(c, leader, 'web', 6, 60_000);
    await c.waitFor('every node ready', async () => {
      const { nodes } = await leader.control<{ nodes: any[] }>('ListNodes', {});
      return nodes.length === c.hosts.length && nodes.every((n) => n.status.state === 'ready') ? true : undefined;
    }, 60_000);
    const convergedS = (Date.now() - tStart) / 1000;
    // The store said "ready" and "running" before the power cycle too: only after a heartbeat
    // timeout (3 x 1 s) does it show that every node really came back with its tasks.
    await sleep(4000);
    const stable = await runningTasks(leader, 'web');
    const { nodes: nodesAfter } = await leader.control<{ nodes: any[] }>('ListNodes', {});
    const allReady = nodesAfter.length === c.hosts.length && nodesAfter.every((n) => n.status.state === 'ready');
    const servicesAfter = (await leader.control<{ services: any[] }>('ListServices', {})).services.map((s) => `${s.service.id}:${s.service.meta.version}`).sort();
    const containersAfter = (await Promise.all(c.hosts.map(containersOn))).flat().sort();
    const sameTasks = before.map((t) => t.id).sort().join() === stable.map((t) => t.id).sort().join();
    const adopted = containersBefore.join() === containersAfter.join();
    log(`after: leader ${leader.name} in ${leaderS.toFixed(2)} s, state served in ${convergedS.toFixed(2)} s; every node ready after a heartbeat timeout: ${allReady}; same services: ${servicesBefore.join() === servicesAfter.join()}; same tasks: ${sameTasks}; containers ${containersAfter.length} (adopted, none new: ${adopted})`);
    const pass = servicesBefore.join() === servicesAfter.join() && sameTasks && adopted && after.length === 6 && allReady;
    return {
      scenario: 'power-cycle', pass, hosts: c.hosts.length, leader_after_restart_s: round(leaderS), state_served_after_restart_s: round(convergedS), nodes_ready_after_heartbeat_timeout: allReady,
      same_services: servicesBefore.join() === servicesAfter.join(), same_tasks: sameTasks, containers_before: containersBefore.length,
      containers_after: containersAfter.length, containers_adopted: adopted, down_s: round((tStart - t0) / 1000),
      targets: { same_services: true, same_tasks: true, containers_adopted: true },
    };
  }),
};
