/**
 * The worker's view of the dispatcher's messages (proto/control.proto and proto/objects.proto, as
 * proto-loader decodes them). The worker knows the manager only through these wire shapes.
 */

export interface WireTaskSpec {
  image: string;
  command: string[];
  args: string[];
  env: string[];
  workingDir: string;
  user: string;
  hostname: string;
  mounts: { source: string; target: string; readOnly: boolean }[];
  resources?: {
    reservations?: { nanoCpus: number; memoryBytes: number };
    limits?: { nanoCpus: number; memoryBytes: number; pids: number };
  };
  stopGracePeriodMs: number;
  stopSignal: string;
  healthcheck?: { test: string[]; intervalMs: number; timeoutMs: number; retries: number; startPeriodMs: number };
}

export type WireTaskState =
  | 'new' | 'pending' | 'assigned' | 'accepted' | 'preparing' | 'starting' | 'running'
  | 'complete' | 'shutdown' | 'failed' | 'rejected' | 'orphaned';

export interface WireTaskStatus {
  state: WireTaskState;
  timestamp: string;
  message: string;
  error: string;
  exitCode: number;
  containerId: string;
  health?: '' | 'starting' | 'healthy' | 'unhealthy';
  startedAt?: string;
}

export interface WireTask {
  id: string;
  serviceId: string;
  serviceName: string;
  slot: number;
  nodeId: string;
  spec: WireTaskSpec;
  specVersion: number;
  desiredState: 'running' | 'shutdown' | 'remove';
  status: WireTaskStatus;
  /** The task's addresses on the overlay networks it joins (the first gives its default route). */
  networks?: { networkId: string; addresses: string[] }[];
  /** Set on a standalone container's network attachment: the node runs nothing for it. */
  attachment?: { containerId: string; containerName: string } | null;
}

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

const ORDER: WireTaskState[] = [
  'new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running',
  'complete', 'shutdown', 'failed', 'rejected', 'orphaned',
];

export function stateRank(s: WireTaskState): number {
  return ORDER.indexOf(s);
}

export function isFinished(s: WireTaskState): boolean {
  return stateRank(s) > stateRank('running');
}
