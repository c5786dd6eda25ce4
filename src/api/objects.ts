/**
 * The cluster's objects as the replicated store keeps them (DESIGN.md, "Objects"). Spec is what
 * the user asked for, status is what is; `meta.version` is the raft index of the last change, which
 * compare-and-set updates name.
 */

export interface Meta {
  version: number;
  createdAt: string;
  updatedAt: string;
}

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';

export interface NodeObject {
  id: string;
  meta: Meta;
  spec: { role: NodeRole; availability: NodeAvailability; labels: Record<string, string> };
  description: {
    hostname: string;
    platform: { os: string; arch: string };
    resources: { nanoCpus: number; memoryBytes: number; generic: Record<string, number> };
    engineLabels: Record<string, string>;
  };
  status: { state: 'unknown' | 'ready' | 'down' | 'disconnected'; message: string; addr: string };
  managerStatus?: { raftId: number; addr: string; reachability: 'reachable' | 'unreachable' | 'unknown'; leader: boolean };
  /** IP:PORT of the node's cluster listener, where it serves raft once it is a manager. */
  advertiseAddr?: string;
  /** The node's own address on the ingress network: the source of routing-mesh traffic it forwards. */
  ingressAddress?: string;
}

export interface ResourceSpec {
  nanoCpus: number;
  memoryBytes: number;
}

export interface ServiceSpec {
  name: string;
  labels: Record<string, string>;
  task: {
    image: string;
    command: string[];
    args: string[];
    env: string[];
    workingDir: string;
    user: string;
    hostname: string;
    mounts: { source: string; target: string; readOnly: boolean }[];
    resources: { reservations: ResourceSpec; limits: ResourceSpec & { pids: number } };
    restartPolicy: { condition: 'none' | 'on-failure' | 'any'; delayMs: number; maxAttempts: number; windowMs: number };
    placement: { constraints: string[]; preferences: { spread: string }[]; maxReplicasPerNode: number };
    stopGracePeriodMs: number;
    stopSignal: string;
    healthcheck?: { test: string[]; intervalMs: number; timeoutMs: number; retries: number; startPeriodMs: number };
    networks: string[];
    /** Bumped by `service update --force`, so that the task template changes and every task is replaced. */
    forceUpdate?: number;
    /**
     * `--with-registry-auth`: the credentials the creating client had for the image's registry. Only
     * nodes that run a task of the service receive them; the control API never returns them.
     */
    registryAuth?: RegistryAuth;
  };
  mode: { replicated: { replicas: number } } | { global: Record<string, never> };
  update: UpdateConfig;
  rollback: UpdateConfig;
  endpoint: { mode: 'vip' | 'dnsrr'; ports: PortConfig[] };
}

export interface RegistryAuth {
  registry: string;
  username: string;
  password: string;
}

export interface UpdateConfig {
  parallelism: number;
  delayMs: number;
  failureAction: 'pause' | 'continue' | 'rollback';
  monitorMs: number;
  maxFailureRatio: number;
  order: 'stop-first' | 'start-first';
}

export interface PortConfig {
  protocol: 'tcp' | 'udp';
  targetPort: number;
  publishedPort: number;
  publishMode: 'ingress' | 'host';
}

export interface ServiceObject {
  id: string;
  meta: Meta;
  spec: ServiceSpec;
  /** Bumped on every spec change: tasks carry the version they were made from. */
  specVersion: number;
  previousSpec?: ServiceSpec;
  /** `service update --rebalance` asked for its running tasks to be spread anew; the leader clears it when it acts. */
  rebalanceRequestedAt?: string;
  endpoint: { virtualIps: { networkId: string; addr: string }[]; ports: PortConfig[] };
  updateStatus?: {
    state: 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_completed' | 'rollback_paused';
    message: string; startedAt: string; completedAt: string;
    /** New tasks that failed within their monitor period (the rolling updater's count). */
    failures?: number;
    /** When the delay after the last batch ends; '' while a batch runs or when none is due. */
    nextBatchAt?: string;
  };
}

/** Task states in the order they are reached; a task's state only moves forward. */
export const TASK_STATES = [
  'new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running',
  'complete', 'shutdown', 'failed', 'rejected', 'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];
export type DesiredTaskState = 'running' | 'shutdown' | 'remove';

export function taskStateRank(s: TaskState): number {
  return TASK_STATES.indexOf(s);
}

/** A task past RUNNING is finished: it will never run again. */
export function isTerminal(s: TaskState): boolean {
  return taskStateRank(s) > taskStateRank('running');
}

/**
 * An object as the CLI names it: by id, by name, or by a unique id prefix. `ambiguous` counts the
 * prefix matches when there are several.
 */
export function matchRef<T extends { id: string }>(all: T[], ref: string, nameOf: (o: T) => string): { match?: T; ambiguous?: number } {
  const exact = all.find((o) => o.id === ref) ?? all.find((o) => nameOf(o) === ref);
  if (exact) return { match: exact };
  const byPrefix = ref ? all.filter((o) => o.id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return { match: byPrefix[0] };
  return byPrefix.length > 1 ? { ambiguous: byPrefix.length } : {};
}

export interface TaskObject {
  id: string;
  meta: Meta;
  serviceId: string;
  /** The service's name when the task was made: names containers and `service ps` rows. */
  serviceName: string;
  /** Replicated services: 1..replicas. Global services: 0 (the node id identifies the task). */
  slot: number;
  nodeId: string;
  spec: ServiceSpec['task'];
  specVersion: number;
  desiredState: DesiredTaskState;
  status: {
    state: TaskState;
    timestamp: string;
    message: string;
    error: string;
    exitCode: number;
    containerId: string;
    /** Set by the worker when a health check applies: the task counts as up only once healthy. */
    health?: '' | 'starting' | 'healthy' | 'unhealthy';
    /** When its container started (kept once it ends): an update's monitor period counts from it. */
    startedAt?: string;
  };
  networks: { networkId: string; addresses: string[] }[];
  /** Restart policy: when this slot was restarted within the policy's window, this task's start included. */
  restarts?: string[];
  /**
   * Set on a network attachment: not a service's task but a standalone container's place on an
   * attachable network (`container run --network NAME`). The node it is on runs nothing for it; it
   * holds the container's address, its DNS name, and the network on that node.
   */
  attachment?: { containerId: string; containerName: string };
}

/** A task as DNS and `network inspect` name it, as docker does: SERVICE.SLOT.ID (a global task: SERVICE.NODE.ID). */
export function taskName(t: TaskObject): string {
  return `${t.serviceName || t.serviceId}.${t.slot > 0 ? t.slot : t.nodeId}.${t.id}`;
}

export interface NetworkObject {
  id: string;
  meta: Meta;
  spec: {
    name: string; driver: 'overlay'; subnet: string; gateway: string; attachable: boolean; labels: Record<string, string>;
    /** The routing mesh's network, made by the swarm itself: published ports enter through it. */
    ingress: boolean;
  };
  /** VXLAN network identifier, unique in the swarm. */
  vni: number;
}

/**
 * The swarm itself (one object): its root CA and join-token secrets live in the replicated store, so
 * that every manager can sign certificates and check tokens, and a new leader has them at once.
 */
/** The id of the one cluster object. */
export const CLUSTER_OBJECT_ID = 'cluster';

export interface ClusterObject {
  id: string;
  meta: Meta;
  /** The swarm's own id, also the O= of every node certificate. */
  swarmId: string;
  spec: {
    taskHistoryLimit: number; heartbeatPeriodMs: number; certExpiryMs: number;
    /** Spread services onto nodes that join or come back (`swarm update --auto-rebalance`); off by default, as in Docker. */
    autoRebalance?: boolean;
  };
  rootCA: { certPem: string; keyPem: string };
  joinSecrets: { worker: string; manager: string };
  /** Nodes removed from the swarm, newest last: their sessions are refused (node-removal.ts). */
  removedNodes?: string[];
}

export interface ObjectTypes {
  node: NodeObject;
  service: ServiceObject;
  task: TaskObject;
  network: NetworkObject;
  cluster: ClusterObject;
}
export type ObjectKind = keyof ObjectTypes;
export const OBJECT_KINDS: ObjectKind[] = ['node', 'service', 'task', 'network', 'cluster'];
export type AnyObject = ObjectTypes[ObjectKind];
