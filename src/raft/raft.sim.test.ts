import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runSchedule, type SimParams } from './sim/harness.js';

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
