/**
 * Nodes removed from the swarm (`node rm`, or managers left out by --force-new-cluster) are
 * remembered on the cluster object, so that one coming back with its old certificate is told to join
 * again instead of being registered anew by its session (as a manager without a place in raft, say).
 */
import type { ClusterObject } from '../../api/objects.js';
import type { Action } from './store.js';

/** The most recent removals kept; an older node's certificate has long expired. */
const KEPT = 1000;

export function isRemovedNode(cluster: ClusterObject | undefined, nodeId: string): boolean {
  return cluster?.removedNodes?.includes(nodeId) ?? false;
}

/** The cluster update that records `nodeIds` as removed (nothing when there is no cluster object yet). */
export function recordRemovedNodes(cluster: ClusterObject | undefined, nodeIds: string[]): Action[] {
  if (!cluster || nodeIds.length === 0) return [];
  const removedNodes = [...(cluster.removedNodes ?? []).filter((id) => !nodeIds.includes(id)), ...nodeIds].slice(-KEPT);
  return [{ op: 'update', kind: 'cluster', object: { ...cluster, removedNodes }, expectVersion: cluster.meta.version }];
}
