/**
 * The scheduler's own view of nodes and tasks. The manager maps its store objects onto these; the
 * scheduler imports nothing from the rest of the project so it can be tested and benchmarked alone.
 */

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';
export type NodeStatus = 'ready' | 'down';
export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** A quantity of resources. Generic resources are named counters such as `gpu: 2`. */
export interface Resources {
  nanoCPUs: number;
  memoryBytes: number;
  generic?: Readonly<Record<string, number>>;
}

export interface Platform {
  os: string;
  arch: string;
}

export interface HostPort {
  protocol: PortProtocol;
  port: number;
}

export interface SchedNode {
  id: string;
  hostname: string;
  role: NodeRole;
  availability: NodeAvailability;
  status: NodeStatus;
  labels?: Readonly<Record<string, string>>;
  engineLabels?: Readonly<Record<string, string>>;
  platform?: Platform;
  /** What the node offers in total. */
  resources: Resources;
  /** What the tasks already on the node reserve (they are not listed one by one). */
  reserved?: Resources;
  /** Host-mode published ports already bound on the node. */
  hostPortsInUse?: readonly HostPort[];
  /** How many tasks of each service already run on the node (by service id). */
  serviceTasks?: Readonly<Record<string, number>>;
}

/** One spread preference: `spread=node.labels.zone` is `{ spread: 'node.labels.zone' }`. */
export interface PlacementPreference {
  spread: string;
}

export interface TaskToPlace {
  id: string;
  serviceId: string;
  reservations?: Resources;
  /** Docker-style expressions such as `node.labels.zone==a`; see `parseConstraint`. */
  constraints?: readonly string[];
  /** Applied in order: the first splits nodes into groups, the next splits each group, ... */
  preferences?: readonly PlacementPreference[];
  /** 0 or absent: no limit. */
  maxReplicasPerNode?: number;
  /** Host-mode published ports the task binds on its node. */
  hostPorts?: readonly HostPort[];
  /** Platforms the image supports; empty or absent means any. An empty os or arch is a wildcard. */
  platforms?: readonly Platform[];
}

/** A task where it runs now. */
export interface PlacedTask extends TaskToPlace {
  nodeId: string;
}

export type Strategy = 'binpack' | 'spread';

export interface PlaceOptions {
  /**
   * Run the filter pipeline over every node to explain each group that does not fit (default true).
   * Planners that only need yes/no turn it off: the explanation costs O(n) per failing group.
   */
  explain?: boolean;
}

export interface ScheduleOptions {
  /** Default `binpack`. */
  strategy?: Strategy;
  /**
   * Relative weight of CPU against memory when binpack measures how full a node is.
   * Default 1 (equal weight).
   */
  cpuWeight?: number;
  memoryWeight?: number;
  /**
   * Binpack only: rank nodes that have generic resources (GPUs, ...) after all others for tasks that
   * do not need them, keeping the scarce devices reachable. Off by default: it costs packing (the
   * benchmark uses about 7% more nodes with it), and tasks needing generic resources are already
   * placed first in every call.
   */
  spareGenericNodes?: boolean;
  /**
   * Binpack only: do not pile a service's replicas on one node while others have room. Each node
   * takes at most a fair share of the service (its tasks on the eligible nodes divided by their
   * number, rounded up) until no node with room is under that share; then it packs as usual. Off by
   * default, so that binpack stays first-fit-decreasing (and never uses more nodes than it).
   */
  spreadReplicas?: boolean;
}

export interface Assignment {
  taskId: string;
  nodeId: string;
}

export interface Unplaced {
  taskId: string;
  /** e.g. `no suitable node (insufficient memory on 7 nodes; constraint node.labels.zone==a not met on 3 nodes)` */
  reason: string;
}

export interface ScheduleResult {
  /** In the order the tasks were given. */
  assignments: Assignment[];
  unplaced: Unplaced[];
}

export interface ClusterState {
  nodes: readonly SchedNode[];
}
