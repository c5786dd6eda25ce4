/**
 * Tasks a `Scheduler` has placed and not yet released: task id -> (node id, requirement). Kept as a
 * map to a slot number plus parallel arrays, so recording 100,000 placements allocates no object
 * per task (the garbage collector was a visible share of a large batch's time).
 */

import type { Requirement } from './requirements.js';

export class PlacedTasks {
  private readonly slotOf = new Map<string, number>();
  private readonly nodeIds: string[] = [];
  private readonly reqs: (Requirement | undefined)[] = [];
  private readonly freeSlots: number[] = [];

  get size(): number {
    return this.slotOf.size;
  }

  has(taskId: string): boolean {
    return this.slotOf.has(taskId);
  }

  nodeOf(taskId: string): string | undefined {
    const s = this.slotOf.get(taskId);
    return s === undefined ? undefined : this.nodeIds[s];
  }

  add(taskId: string, nodeId: string, req: Requirement): void {
    const s = this.freeSlots.pop() ?? this.nodeIds.length;
    this.nodeIds[s] = nodeId;
    this.reqs[s] = req;
    this.slotOf.set(taskId, s);
  }

  /** Forget a task; returns where it was and what it reserved. */
  delete(taskId: string): { nodeId: string; req: Requirement } | undefined {
    const s = this.slotOf.get(taskId);
    if (s === undefined) return undefined;
    this.slotOf.delete(taskId);
    const rec = { nodeId: this.nodeIds[s]!, req: this.reqs[s]! };
    this.reqs[s] = undefined;
    this.freeSlots.push(s);
    return rec;
  }

  *entries(): IterableIterator<[taskId: string, nodeId: string, req: Requirement]> {
    for (const [taskId, s] of this.slotOf) yield [taskId, this.nodeIds[s]!, this.reqs[s]!];
  }
}
