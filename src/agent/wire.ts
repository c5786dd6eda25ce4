/**
 * The dispatcher's messages as this node's agent receives them: the data model of src/api/ as
 * proto/control.proto carries it and proto-loader decodes it. Only what the wire changes is written
 * here: a message field that was never set arrives as null, and a task carries no store metadata.
 */
import { isTerminal, taskStateRank, type ResourceSpec, type ServiceSpec, type TaskObject, type TaskState } from '../api/objects.js';

type TaskSpec = ServiceSpec['task'];

export type WireTaskState = TaskState;

export type WireTaskSpec = Omit<TaskSpec, 'resources' | 'restartPolicy' | 'placement' | 'networks'> & {
  resources?: { reservations?: ResourceSpec; limits?: ResourceSpec & { pids: number } } | null;
  restartPolicy?: TaskSpec['restartPolicy'] | null;
  placement?: TaskSpec['placement'] | null;
  networks?: string[];
};

export type WireTaskStatus = TaskObject['status'];

export type WireTask = Omit<TaskObject, 'meta' | 'spec' | 'networks' | 'attachment' | 'restarts'> & {
  spec: WireTaskSpec;
  /** The task's addresses on the overlay networks it joins (the first gives its default route). */
  networks?: TaskObject['networks'];
  /** Set on a standalone container's network attachment: the node runs nothing for it. */
  attachment?: TaskObject['attachment'] | null;
};

/** proto AttachNetworkResponse. */
export interface WireNetworkAttachment {
  taskId: string;
  networkId: string;
  networkName: string;
  address: string;
}

export interface WireAssignment {
  task: WireTask;
  action: 'update' | 'remove';
}

export interface WireSessionMessage {
  sessionId: string;
  assignments: WireAssignment[];
  full: boolean;
  managers: string[];
  heartbeatPeriodMs: number;
  nodeRole: 'manager' | 'worker' | '';
  raftId: number;
  /** proto NodeNetworkState: null unless the node's view of the networks changed. */
  networkState: unknown;
}

export const stateRank = taskStateRank;
export const isFinished = isTerminal;
