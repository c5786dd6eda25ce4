/**
 * Strategies as orderings of nodes: a bigger key is a more preferred node; ties go to the node listed
 * first, so results never depend on anything but the input.
 *
 * - binpack: the fullest node (CPU and memory fractions in use, weighted). The key depends only on the
 *   node, so one index per set of eligible nodes serves every service and survives across batches.
 * - spread: fewest tasks of this service, then fewest tasks overall. The key depends on the service, so
 *   a batch builds its own index (O(m log m) for m eligible nodes) and then places in O(log m) each.
 */

import type { NodeTable } from './node-table.js';

export function binpackKey(table: NodeTable, cpuWeight: number, memoryWeight: number): (i: number) => number {
  return (i) => table.fullness(i, cpuWeight, memoryWeight);
}

// Task counts stay far below 2^21, so the pair packs exactly into one double.
const SERVICE_WEIGHT = 2 ** 31;

export function spreadKey(table: NodeTable, serviceId: string): (i: number) => number {
  const counts = table.countsFor(serviceId);
  return (i) => -((counts.get(i) ?? 0) * SERVICE_WEIGHT + table.taskCount[i]!);
}
