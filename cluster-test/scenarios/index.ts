import type { Scenario } from './common.js';
import { smoke } from './smoke.js';
import { leaderKill } from './leader-kill.js';

export type { ScenarioOptions, Scenario } from './common.js';

export const SCENARIOS: Record<string, Scenario> = {
  smoke,
  'leader-kill': leaderKill,
};
