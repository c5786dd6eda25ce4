import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runSchedule, type SimParams } from '../../testkit/raft/harness.js';

/**
 * Deterministic simulation: fast-check draws the schedule parameters and a seed; the seed drives every
 * choice inside a schedule. A failure prints a one-line command that replays exactly that schedule.
 */
const RUNS = Number(process.env.RAFT_SIM_RUNS ?? 12000);
const REPLAY = process.env.RAFT_SIM_REPLAY;

const paramsArb: fc.Arbitrary<SimParams> = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  steps: fc.integer({ min: 500, max: 4000 }),
  loss: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.25, noNaN: true })),
  dup: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.1, noNaN: true })),
  maxDelay: fc.integer({ min: 1, max: 40 }),
  crashRate: fc.double({ min: 0, max: 0.01, noNaN: true }),
  partitionRate: fc.double({ min: 0, max: 0.01, noNaN: true }),
  confRate: fc.double({ min: 0, max: 0.01, noNaN: true }),
  compactRate: fc.double({ min: 0, max: 0.05, noNaN: true }),
  transferRate: fc.double({ min: 0, max: 0.005, noNaN: true }),
  clients: fc.integer({ min: 1, max: 6 }),
  clientRate: fc.double({ min: 0.05, max: 0.6, noNaN: true }),
});

/**
 * Schedules that once failed, replayed on every run. Each documents what went wrong.
 *
 * 1037787816: reported as "cluster did not converge after healing" with the leader one entry ahead.
 * Replication was healthy: clients kept proposing during the quiet phase, and with ~19-step average
 * delays six closed-loop clients left no idle moment in 3000 steps, so "everyone applied the
 * leader's whole log" never held at a step boundary. Duplication played no part (the same happens
 * with dup = 0). The quiet phase now issues no new requests.
 */
/*
 * 900024265: found when the harness began to model writes that take time (a node steps messages while
 * its write is in flight, as the real node loop does). The leader then counted its own unpersisted
 * copy of entry 13 toward a commit, crashed before its write completed, and a new leader without the
 * entry was elected: the commit index had run ahead of what a majority held durably. The leader
 * now counts its own copy only after advance() reports it persisted.
 */
const REGRESSIONS: SimParams[] = [
  {
    seed: 900024265, steps: 3396, loss: 0, dup: 6.479678828573337e-96, maxDelay: 3, crashRate: 0.00999999999999998,
    partitionRate: 1.8627333052541457e-289, confRate: 7.488070268116664e-65, compactRate: 2.460530379938347e-171,
    transferRate: 3.5e-323, clients: 2, clientRate: 0.10901163581140304,
  },
  {
    seed: 1037787816, steps: 1553, loss: 0, dup: 0.09999999999999985, maxDelay: 38, crashRate: 7.801598189255313e-165,
    partitionRate: 1.707516292416587e-169, confRate: 1.3903488415822495e-82, compactRate: 9.4e-323,
    transferRate: 1.490921022553677e-147, clients: 6, clientRate: 0.5999999999999995,
  },
];

function replayLine(p: SimParams): string {
  return `RAFT_SIM_REPLAY='${JSON.stringify(p)}' npx vitest run src/raft/raft.sim.test.ts`;
}

describe('raft simulation', () => {
  it.skipIf(REPLAY === undefined)('replays one schedule', () => {
    const p = JSON.parse(REPLAY!) as SimParams;
    const r = runSchedule(p);
    console.log(JSON.stringify(r));
    expect(r.error).toBeUndefined();
  });

  it.skipIf(REPLAY !== undefined).each(REGRESSIONS.map((p) => [p.seed, p] as const))('replays regression schedule %i', (_seed, p) => {
    const r = runSchedule(p);
    expect(r.error).toBeUndefined();
  });

  it.skipIf(REPLAY !== undefined)(`keeps safety and linearizability over ${RUNS} random schedules`, () => {
    const t0 = Date.now();
    const totals = { schedules: 0, commits: 0, ops: 0, completed: 0, leaders: 0, snapshotsSent: 0, maxQuietSteps: 0 };
    fc.assert(
      fc.property(paramsArb, (p) => {
        const r = runSchedule(p);
        totals.schedules++;
        totals.commits += r.commits;
        totals.ops += r.ops;
        totals.completed += r.completed;
        totals.leaders += r.leaders;
        totals.snapshotsSent += r.snapshotsSent;
        totals.maxQuietSteps = Math.max(totals.maxQuietSteps, r.quietSteps);
        if (!r.ok) throw new Error(`${r.error}\n  replay: ${replayLine(p)}`);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    console.log(`raft sim: ${JSON.stringify(totals)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // the schedules must actually exercise the protocol
    expect(totals.completed).toBeGreaterThan(totals.schedules);
    expect(totals.snapshotsSent).toBeGreaterThan(0);
  }, 600_000);
});
