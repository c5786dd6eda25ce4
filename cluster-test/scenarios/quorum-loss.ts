/**
 * quorum-loss: two of three managers die for good while clients write. Writes then fail with a
 * clear "no quorum" error and none is acknowledged; `swarm init --force-new-cluster` on the
 * survivor restores service with the same services; the two lost managers, restarted together, are
 * refused as removed members and elect no second leader; the history stays linearizable.
 */
import { IMAGE } from '../harness.js';
import { Rng } from '../rng.js';
import { Workload } from '../workload.js';
import { KEYS, round } from './leader-kill.js';
import { finishAndCheck, runningTasks, sleep, verdictFields, waitConverged, withCluster, type Scenario } from './common.js';

export const quorumLoss: Scenario = {
  description: 'kill two of three managers; no-quorum errors; --force-new-cluster on the survivor; the lost ones come back and are refused',
  inAll: true,
  run: (opts) => withCluster(opts, { heartbeat: '1s' }, async (c) => {
    const log = opts.log ?? (() => {});
    const seed = opts.seed ?? 4;
    const replicas = c.workers().length;
    await c.hosts[0]!.ok(['service', 'create', '-d', '--name', 'web', '--replicas', String(replicas), '--constraint', 'node.role==worker', IMAGE, 'sleep', '3600']);
    await waitConverged(c, c.hosts[0]!, 'web', replicas);
    const w = new Workload({ managers: () => c.managers(), clients: 4, keys: KEYS, rng: new Rng(seed), thinkMs: 10 });
    w.start();
    await sleep(3000);
    const leader = await c.leader();
    const survivor = c.managers().find((m) => m !== leader)!;
    const lost = c.managers().filter((m) => m !== survivor);
    const tLoss = Date.now();
    await Promise.all(lost.map((m) => m.kill()));
    log(`killed ${lost.map((m) => m.name).join(' and ')} (the leader was ${leader.name}); ${survivor.name} survives`);
    const refused = await survivor.cli(['service', 'scale', '-d', `web=${replicas + 1}`], 30_000);
    const error = refused.stderr.trim();
    log(`service scale on ${survivor.name}: exit ${refused.code}: ${error}`);
    const clearError = refused.code !== 0 && /no quorum/.test(error);
    const ackedDuringLoss = w.acks.filter((a) => a.call > tLoss + 100).length;
    await sleep(1000);
    const tForce = Date.now();
    await survivor.ok(['swarm', 'init', '--force-new-cluster']);
    const forceS = (Date.now() - tForce) / 1000;
    const ack = await c.waitFor('an acknowledged write after --force-new-cluster', async () => w.acks.find((a) => a.call > tForce), 30_000, 20);
    const ackS = (ack.at - tForce) / 1000;
    log(`--force-new-cluster took ${forceS.toFixed(2)} s; next acknowledged write ${ackS.toFixed(3)} s after it was run`);
    const spec = await survivor.control<any>('GetService', { id: 'web' });
    const sameReplicas = Number(spec.spec.mode.replicated.replicas) === replicas;
    await survivor.ok(['service', 'scale', '-d', `web=${replicas + 1}`]);
    const tasks = await waitConverged(c, survivor, 'web', replicas + 1, 60_000);
    const { nodes } = await survivor.control<{ nodes: any[] }>('ListNodes', {});
    const readyWorkers = nodes.filter((n) => n.spec.role === 'worker' && n.status.state === 'ready').length;
    const managersLeft = nodes.filter((n) => n.managerStatus?.raftId).map((n) => n.description.hostname);
    log(`after: web scaled to ${tasks.length} on ${tasks.map((t) => t.node).sort().join(',')}; managers ${managersLeft.join(',')}; ${readyWorkers} workers ready`);

    // The lost managers come back together, while clients keep writing (to them too): by their own
    // logs they are two of three. The survivor must refuse them as removed members, so that they
    // stop instead of electing each other and serving an older swarm beside the new one.
    await Promise.all(lost.map((m) => m.start()));
    const tBack = Date.now();
    const refusedBack = await Promise.all(lost.map((m) => c.waitFor(`${m.name} told it was removed`, async () => {
      const r = await m.cli(['service', 'ls'], 10_000);
      return /removed from the swarm's raft cluster/.test(r.stderr) ? true : undefined;
    }, 30_000).catch(() => false)));
    const oldManagersRefused = refusedBack.every(Boolean);
    const leaderAfter = await c.leader({ among: [survivor] });
    const claims = await Promise.all(lost.map(async (m) => (await m.swarmInfo())?.leaderAddr ?? ''));
    const noSecondLeader = leaderAfter === survivor && claims.every((a) => a === '' || a === survivor.addr);
    log(`${lost.map((m) => m.name).join(' and ')} restarted: refused as removed ${oldManagersRefused} (${((Date.now() - tBack) / 1000).toFixed(1)} s), leaders they name: ${claims.map((a) => a || 'none').join(', ')}`);
    const verdict = await finishAndCheck(w, survivor, KEYS, log);
    const fields = verdictFields(verdict, log, w.history);
    const stillRunning = await runningTasks(survivor, 'web');
    const pass = clearError && ackedDuringLoss === 0 && sameReplicas && stillRunning.length === replicas + 1 && managersLeft.length === 1
      && oldManagersRefused && noSecondLeader
      && readyWorkers === c.workers().length && verdict.linearizable && verdict.lostAcknowledgedWrites === 0 && verdict.versionAnomalies.length === 0;
    return {
      scenario: 'quorum-loss', pass, seed, survivor: survivor.name, no_quorum_error: clearError, error_message: error,
      writes_acknowledged_without_quorum: ackedDuringLoss, force_new_cluster_s: round(forceS), force_to_ack_s: round(ackS),
      service_intact: sameReplicas, workers_reconnected: readyWorkers, managers_after: managersLeft,
      old_managers_refused: oldManagersRefused, second_leader: !noSecondLeader, ...fields,
      targets: { no_quorum_error: true, writes_acknowledged_without_quorum: 0, lost_acknowledged_writes: 0, linearizability_violations: 0 },
    };
  }),
};
