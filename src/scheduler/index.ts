/**
 * tsswarm's scheduler: pure placement of tasks on nodes (no I/O, no clock, no randomness).
 * See scheduler.ts for how a call works and rebalance.ts for the move planner.
 */

export type {
  Assignment,
  ClusterState,
  HostPort,
  NodeAvailability,
  NodeRole,
  NodeStatus,
  PlacedTask,
  PlaceOptions,
  PlacementPreference,
  Platform,
  PortProtocol,
  Resources,
  SchedNode,
  ScheduleOptions,
  ScheduleResult,
  Strategy,
  TaskToPlace,
  Unplaced,
} from './types.js';
export { ConstraintSyntaxError, constraintMatches, parseConstraint, parseConstraints, parsePreferenceKey } from './constraint.js';
export type { Constraint, ConstraintField, ConstraintOperator } from './constraint.js';
export { Scheduler, schedule } from './scheduler.js';
export { planRebalance } from './rebalance.js';
export type { RebalanceOptions, RebalancePlan, TaskMove } from './rebalance.js';
