/**
 * random: a seeded mix of faults (manager kill and restart, SIGSTOP/SIGCONT, a manager or the
 * leader cut off, one-way cuts, a worker power loss) for a bounded time with client traffic;
 * then a full heal and a convergence check. At most one manager is faulty at a time, so the
 * cluster should keep a quorum throughout; the history must be linearizable.
 */
import type { Cluster, Host } from '../harness.js';
import { IMAGE } from '../harness.js';
import { Rng } from '../rng.js';
import { Workload } from '../workload.js';
import { KEYS } from './leader-kill.js';
import { finishAndCheck, sleep, verdictFields, waitConverged, withCluster, type Scenario } from './common.js';

type Fault = { name: string; inject: (c: Cluster, rng: Rng) => Promise<() => Promise<void>> };

const FAULTS: Fault[] = [
  { name: 'kill a manager', inject: async (c, rng) => { const m = rng.pick(c.managers()); await m.kill(); return () => m.start(); } },
  { name: 'pause a manager', inject: async (c, rng) => { const m = rng.pick(c.managers()); m.stop(); return async () => m.cont(); } },
  { name: 'cut a manager off', inject: async (c, rng) => { const m = rng.pick(c.managers()); await c.partition(m, c.hosts.filter((h) => h !== m)); return () => c.heal(); } },
  { name: 'cut the leader off', inject: async (c) => { const l = await c.leader({ timeoutMs: 10_000 }); await c.partition(l, c.managers().filter((h) => h !== l)); return () => c.heal(); } },
  {
    name: 'one-way cut from a manager', inject: async (c, rng) => {
      const m = rng.pick(c.managers());
      await c.partition(m, c.managers().filter((h) => h !== m), { oneWay: true });
      return () => c.heal();
    },
  },
  { name: 'kill the leader', inject: async (c) => { const l = await c.leader({ timeoutMs: 10_000 }); await l.kill(); return () => l.start(); } },
  { name: 'worker power loss', inject: async (c, rng) => { const w = rng.pick(c.workers()); await c.powerOff(w); return () => c.powerOn(w); } },
];

export const random: Scenario = {
  description: 'a seeded mix of faults for a bounded time (--duration S, default 60), then heal and check',
  inAll: true,
  run: (opts) => withCluster(opts, { heartbeat: '1s' }, async (c) => {
    const log = opts.log ?? (() => {});
    const seed = opts.seed ?? 5;
    const rng = new Rng(seed);
    const durationMs = (opts.durationS ?? 60) * 1000;
    await c.hosts[0]!.ok(['service', 'create', '-d', '--name', 'web', '--replicas', '4', IMAGE, 'sleep', '3600']);
    await waitConverged(c, c.hosts[0]!, 'web', 4);
    const w = new Workload({ managers: () => c.managers(), clients: 4, keys: KEYS, rng: rng.fork(99), thinkMs: 10 });
    w.start();
    const injected: string[] = [];
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      const fault = rng.pick(FAULTS);
      const holdMs = rng.int(1000, 6000);
      log(`fault: ${fault.name} for ${(holdMs / 1000).toFixed(1)} s`);
      const undo = await fault.inject(c, rng);
      injected.push(fault.name);
      await sleep(holdMs);
      await undo();
      await sleep(rng.int(1000, 4000));
    }
    // Full heal: every cut lifted, every daemon running.
    await c.heal();
    for (const h of c.hosts as Host[]) {
      if (h.state === 'paused') h.cont();
      if (h.state === 'stopped') await h.start();
    }
    const tHeal = Date.now();
    const leader = await c.leader({ timeoutMs: 30_000 });
    await c.waitFor('every node ready', async () => {
      const { nodes } = await leader.control<{ nodes: any[] }>('ListNodes', {});
      return nodes.length === c.hosts.length && nodes.every((n) => n.status.state === 'ready') ? true : undefined;
    }, 60_000);
    let tasks = await waitConverged(c, leader, 'web', 4, 60_000);
    const convergedS = (Date.now() - tHeal) / 1000;
    // What the store showed may predate the faults: after a heartbeat timeout (3 x 1 s) every node
    // must still be ready and the service still whole.
    await sleep(4000);
    tasks = await waitConverged(c, leader, 'web', 4, 60_000);
    const { nodes } = await leader.control<{ nodes: any[] }>('ListNodes', {});
    const allReady = nodes.length === c.hosts.length && nodes.every((n) => n.status.state === 'ready');
    const verdict = await finishAndCheck(w, leader, KEYS, log);
    const fields = verdictFields(verdict, log, w.history);
    log(`${injected.length} faults; converged ${convergedS.toFixed(2)} s after the heal (web on ${tasks.map((t) => t.node).sort().join(',')})`);
    const pass = verdict.linearizable && verdict.lostAcknowledgedWrites === 0 && verdict.versionAnomalies.length === 0 && tasks.length === 4 && allReady;
    return {
      scenario: 'random', pass, seed, duration_s: durationMs / 1000, faults: injected.length, fault_kinds: [...new Set(injected)],
      converged_after_heal_s: Math.round(convergedS * 1000) / 1000, nodes_ready_after_heartbeat_timeout: allReady, acknowledged_writes: w.acks.length, ...fields,
      targets: { lost_acknowledged_writes: 0, linearizability_violations: 0, converged: true },
    };
  }),
};
