/**
 * The scheduler seen from the manager: store objects mapped onto the scheduler's own types. Tasks of
 * one service spread over nodes (Docker Swarm's behaviour) unless the cluster is told to binpack.
 */
import { constraintMatches, parseConstraint, schedule, type SchedNode, type Strategy, type TaskToPlace } from '../../scheduler/index.js';
import { isTerminal, type NodeObject, type ServiceObject, type TaskObject } from '../../api/objects.js';

/** Placement of tasks on nodes: the scheduler, seen from the manager. */
export interface Placer {
  place(nodes: NodeObject[], running: TaskObject[], toPlace: TaskObject[]): {
    assignments: Map<string, string>;
    unplaced: Map<string, string>; // task id -> why ("no suitable node (...)")
  };
}

export function toSchedNode(n: NodeObject, tasksOnNode: TaskObject[]): SchedNode {
  let cpu = 0;
  let mem = 0;
  const serviceTasks: Record<string, number> = {};
  const hostPorts: { protocol: 'tcp' | 'udp'; port: number }[] = [];
  for (const t of tasksOnNode) {
    if (isTerminal(t.status.state) || t.desiredState !== 'running') continue;
    cpu += t.spec.resources.reservations.nanoCpus;
    mem += t.spec.resources.reservations.memoryBytes;
    serviceTasks[t.serviceId] = (serviceTasks[t.serviceId] ?? 0) + 1;
  }
  return {
    id: n.id,
    hostname: n.description.hostname,
    role: n.spec.role,
    availability: n.spec.availability,
    status: n.status.state === 'ready' ? 'ready' : 'down',
    labels: n.spec.labels,
    engineLabels: n.description.engineLabels,
    platform: n.description.platform,
    resources: { nanoCPUs: n.description.resources.nanoCpus, memoryBytes: n.description.resources.memoryBytes },
    reserved: { nanoCPUs: cpu, memoryBytes: mem },
    hostPortsInUse: hostPorts,
    serviceTasks,
  };
}

export function toTaskToPlace(t: TaskObject, hostPorts: { protocol: 'tcp' | 'udp'; port: number }[] = []): TaskToPlace {
  const p = t.spec.placement;
  return {
    id: t.id,
    serviceId: t.serviceId,
    reservations: { nanoCPUs: t.spec.resources.reservations.nanoCpus, memoryBytes: t.spec.resources.reservations.memoryBytes },
    // A global service's task is made for one node: it may go nowhere else.
    constraints: t.nodeId ? [...p.constraints, `node.id==${t.nodeId}`] : p.constraints,
    preferences: p.preferences,
    maxReplicasPerNode: p.maxReplicasPerNode,
    hostPorts,
  };
}

export class SchedulerPlacer implements Placer {
  constructor(private readonly strategy: Strategy = 'spread') {}

  place(nodes: NodeObject[], running: TaskObject[], toPlace: TaskObject[]) {
    const byNode = new Map<string, TaskObject[]>();
    for (const t of running) {
      const list = byNode.get(t.nodeId);
      if (list) list.push(t);
      else byNode.set(t.nodeId, [t]);
    }
    const result = schedule({ nodes: nodes.map((n) => toSchedNode(n, byNode.get(n.id) ?? [])) }, toPlace.map((t) => toTaskToPlace(t)), { strategy: this.strategy });
    return {
      assignments: new Map(result.assignments.map((a) => [a.taskId, a.nodeId])),
      unplaced: new Map(result.unplaced.map((u) => [u.taskId, u.reason])),
    };
  }
}

/** For the control API: a malformed constraint's message, or undefined when it parses. */
export function constraintProblem(expr: string): string | undefined {
  try {
    parseConstraint(expr);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^invalid constraint "[^"]*": /, '');
  }
}

/** For the global orchestrator: does the node meet all of the service's constraints? */
export function nodeMeetsConstraints(service: ServiceObject, node: NodeObject): boolean {
  const sched = toSchedNode(node, []);
  return service.spec.task.placement.constraints.every((c) => constraintMatches(sched, parseConstraint(c)));
}
