/**
 * Strategies as orderings of nodes: a bigger key is a more preferred node; ties go to the node listed
 * first, so results never depend on anything but the input.
 *
 * - binpack: the fullest node (CPU and memory fractions in use, weighted), nodes with generic resources
 *   last for tasks that do not need them. The key depends only on the node (and whether the task
 *   asks for generic resources, which is part of the static key), so one index per set of eligible
 *   nodes serves every service and survives across batches.
 * - spread: fewest tasks of this service, then fewest tasks overall. The key depends on the service, so
 *   a batch builds its own index (O(m log m) for m eligible nodes) and then places in O(log m) each.
 */

import type { NodeTable } from './node-table.js';

export function binpackKey(table: NodeTable, cpuWeight: number, memoryWeight: number, spareGenericNodes: boolean): (i: number) => number {
  if (!spareGenericNodes) return (i) => table.fullness(i, cpuWeight, memoryWeight);
  // Tasks that need no GPU (or other generic resource) go to such nodes only when nothing else fits:
  // fullness is within [0, 1], so the offset ranks every one of them after every plain node.
  return (i) => table.fullness(i, cpuWeight, memoryWeight) - (table.genericTotal[i] !== undefined && table.genericTotal[i]!.size > 0 ? 2 : 0);
}

// Task counts stay far below 2^21, so the pair packs exactly into one double.
const SERVICE_WEIGHT = 2 ** 31;

export function spreadKey(table: NodeTable, serviceId: string): (i: number) => number {
  const counts = table.countsFor(serviceId);
  return (i) => -((counts.get(i) ?? 0) * SERVICE_WEIGHT + table.taskCount[i]!);
}
