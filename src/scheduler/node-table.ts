/**
 * The mutable working state of every node during placement, in flat arrays indexed by node position
 * so the hot path touches numbers, not objects. Built from the caller's `SchedNode`s; tasks placed
 * (or moved) by the scheduler are added and removed here.
 */

import { portKey, type Requirement } from './requirements.js';
import type { SchedNode } from './types.js';

export class NodeTable {
  readonly size: number;
  readonly nodes: SchedNode[];
  readonly indexById = new Map<string, number>();
  readonly totalCpu: Float64Array;
  readonly totalMemory: Float64Array;
  readonly freeCpu: Float64Array;
  readonly freeMemory: Float64Array;
  /** Tasks of any service on the node, for spread's tie-break. */
  readonly taskCount: Int32Array;
  /** Can the node take new work at all (ready and active)? */
  readonly schedulable: Uint8Array;
  /** Free generic resources; undefined when the node has none. */
  readonly genericFree: (Map<string, number> | undefined)[];
  readonly genericTotal: (Map<string, number> | undefined)[];
  readonly portsInUse: (Set<string> | undefined)[];
  /** service id -> node index -> tasks of that service on the node. Sparse: most pairs are zero. */
  readonly serviceCounts = new Map<string, Map<number, number>>();

  constructor(nodes: SchedNode[]) {
    const n = nodes.length;
    this.size = n;
    this.nodes = nodes;
    this.totalCpu = new Float64Array(n);
    this.totalMemory = new Float64Array(n);
    this.freeCpu = new Float64Array(n);
    this.freeMemory = new Float64Array(n);
    this.taskCount = new Int32Array(n);
    this.schedulable = new Uint8Array(n);
    this.genericFree = new Array(n);
    this.genericTotal = new Array(n);
    this.portsInUse = new Array(n);
    for (let i = 0; i < n; i++) {
      const node = nodes[i]!;
      if (this.indexById.has(node.id)) throw new Error(`duplicate node id ${node.id}`);
      this.indexById.set(node.id, i);
      const total = node.resources;
      const reserved = node.reserved;
      this.totalCpu[i] = total.nanoCPUs;
      this.totalMemory[i] = total.memoryBytes;
      this.freeCpu[i] = total.nanoCPUs - (reserved?.nanoCPUs ?? 0);
      this.freeMemory[i] = total.memoryBytes - (reserved?.memoryBytes ?? 0);
      this.schedulable[i] = node.status === 'ready' && node.availability === 'active' ? 1 : 0;
      if (total.generic) {
        const t = new Map<string, number>();
        const f = new Map<string, number>();
        for (const [k, v] of Object.entries(total.generic)) {
          t.set(k, v);
          f.set(k, v - (reserved?.generic?.[k] ?? 0));
        }
        this.genericTotal[i] = t;
        this.genericFree[i] = f;
      }
      if (node.hostPortsInUse && node.hostPortsInUse.length > 0) this.portsInUse[i] = new Set(node.hostPortsInUse.map(portKey));
      if (node.serviceTasks) {
        for (const [service, count] of Object.entries(node.serviceTasks)) {
          if (count <= 0) continue;
          this.countsFor(service).set(i, count);
          this.taskCount[i] = this.taskCount[i]! + count;
        }
      }
    }
  }

  /** Take a new description whose only differences are availability and status. */
  describe(i: number, node: SchedNode): void {
    this.nodes[i] = node;
    this.schedulable[i] = node.status === 'ready' && node.availability === 'active' ? 1 : 0;
  }

  countsFor(serviceId: string): Map<number, number> {
    let m = this.serviceCounts.get(serviceId);
    if (!m) {
      m = new Map();
      this.serviceCounts.set(serviceId, m);
    }
    return m;
  }

  serviceCount(serviceId: string, i: number): number {
    return this.serviceCounts.get(serviceId)?.get(i) ?? 0;
  }

  /** Account a task of `req` on node i (sign +1) or take it off again (sign -1). */
  apply(i: number, req: Requirement, sign: 1 | -1, counts: Map<number, number> = this.countsFor(req.serviceId)): void {
    this.freeCpu[i] = this.freeCpu[i]! - sign * req.cpu;
    this.freeMemory[i] = this.freeMemory[i]! - sign * req.memory;
    this.taskCount[i] = this.taskCount[i]! + sign;
    if (req.generic.length > 0) {
      let free = this.genericFree[i];
      if (!free) {
        free = new Map();
        this.genericFree[i] = free;
      }
      for (const [k, v] of req.generic) free.set(k, (free.get(k) ?? 0) - sign * v);
    }
    if (req.ports.length > 0) {
      let ports = this.portsInUse[i];
      if (!ports) {
        ports = new Set();
        this.portsInUse[i] = ports;
      }
      for (const p of req.ports) {
        if (sign > 0) ports.add(p);
        else ports.delete(p);
      }
    }
    const c = (counts.get(i) ?? 0) + sign;
    if (c > 0) counts.set(i, c);
    else counts.delete(i);
  }

  /** Fraction of the node in use, weighted across CPU and memory: binpack's "fullness". */
  fullness(i: number, cpuWeight: number, memoryWeight: number): number {
    const tc = this.totalCpu[i]!;
    const tm = this.totalMemory[i]!;
    const c = tc > 0 ? (tc - this.freeCpu[i]!) / tc : 0;
    const m = tm > 0 ? (tm - this.freeMemory[i]!) / tm : 0;
    return (cpuWeight * c + memoryWeight * m) / (cpuWeight + memoryWeight);
  }
}
