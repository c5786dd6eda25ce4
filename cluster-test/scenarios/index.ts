import type { Scenario } from './common.js';
import { leaderKill } from './leader-kill.js';
import { leaderPartition } from './leader-partition.js';
import { powerCycle } from './power-cycle.js';
import { quorumLoss } from './quorum-loss.js';
import { random } from './random.js';
import { registry } from './registry.js';
import { rollingRestart } from './rolling-restart.js';
import { smoke } from './smoke.js';
import { workerLoss } from './worker-loss.js';

export type { ScenarioOptions, Scenario } from './common.js';

/** In the order `all` runs them. */
export const SCENARIOS: Record<string, Scenario> = {
  smoke,
  'leader-kill': leaderKill,
  'leader-partition': leaderPartition,
  'worker-loss': workerLoss,
  'rolling-restart': rollingRestart,
  registry,
  'power-cycle': powerCycle,
  'quorum-loss': quorumLoss,
  random,
};
