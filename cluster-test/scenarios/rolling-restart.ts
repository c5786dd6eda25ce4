/**
 * rolling-restart: every manager restarted one after another (SIGTERM, start) while clients
 * update services and the test scales a real one; nothing acknowledged is lost and the service
 * converges to its last scale.
 */
import { IMAGE } from '../harness.js';
import { Rng } from '../rng.js';
import { Workload } from '../workload.js';
import { KEYS, round } from './leader-kill.js';
import { finishAndCheck, sleep, verdictFields, waitConverged, withCluster, type Scenario } from './common.js';

export const rollingRestart: Scenario = {
  description: 'restart every manager in turn while services are updated',
  inAll: true,
  run: (opts) => withCluster(opts, { heartbeat: '1s' }, async (c) => {
    const log = opts.log ?? (() => {});
    const seed = opts.seed ?? 3;
    await c.hosts[0]!.ok(['service', 'create', '-d', '--name', 'web', '--replicas', '3', IMAGE, 'sleep', '3600']);
    await waitConverged(c, c.hosts[0]!, 'web', 3);
    const w = new Workload({ managers: () => c.managers(), clients: 4, keys: KEYS, rng: new Rng(seed), thinkMs: 10 });
    w.start();
    let replicas = 3;
    const pauses: number[] = [];
    for (const m of c.managers()) {
      await sleep(1500);
      const t0 = Date.now();
      await m.shutdown();
      replicas++;
      const other = c.managers().find((x) => x !== m)!;
      // scale through a running manager while this one is down
      await c.waitFor(`scaling web to ${replicas}`, async () => ((await other.cli(['service', 'scale', '-d', `web=${replicas}`], 10_000)).code === 0 ? true : undefined), 30_000, 200);
      await m.start();
      await c.waitFor(`${m.name} back as a manager that knows the leader`, async () => ((await m.swarmInfo(500))?.leaderAddr ? true : undefined), 30_000, 50);
      pauses.push((Date.now() - t0) / 1000);
      log(`${m.name} restarted and following after ${pauses.at(-1)!.toFixed(2)} s; web scaled to ${replicas}`);
    }
    await sleep(2000);
    const leader = await c.leader();
    const verdict = await finishAndCheck(w, leader, KEYS, log);
    const tasks = await waitConverged(c, leader, 'web', replicas, 60_000);
    log(`web converged to ${tasks.length} tasks on ${tasks.map((t) => t.node).sort().join(',')}`);
    const fields = verdictFields(verdict, log, w.history);
    const pass = verdict.linearizable && verdict.lostAcknowledgedWrites === 0 && verdict.versionAnomalies.length === 0 && tasks.length === replicas;
    return {
      scenario: 'rolling-restart', pass, seed, restarts: pauses.length, restart_to_following_s: pauses.map(round), web_replicas: replicas, web_running: tasks.length,
      acknowledged_writes: w.acks.length, ...fields,
      targets: { lost_acknowledged_writes: 0, linearizability_violations: 0, converged: true },
    };
  }),
};
