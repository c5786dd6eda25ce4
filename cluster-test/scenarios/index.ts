import type { Scenario } from './common.js';
import { smoke } from './smoke.js';

export type { ScenarioOptions, Scenario } from './common.js';

export const SCENARIOS: Record<string, Scenario> = {
  smoke,
};
