/**
 * The filter pipeline. Each filter says whether a node can take a task and, if not, names the reason
 * in words a user reads in `service ps`. The hot path calls the boolean checks (`staticallyEligible`,
 * `fitsNow`); only when a task cannot be placed does `explainRejections` run the whole pipeline over
 * every node to count the reasons.
 *
 * Static filters depend on the node's description only (readiness, availability, platform,
 * constraints, having a generic resource at all); dynamic ones on what is placed (resources, host
 * ports, replicas per node). A node is charged to the first filter that rejects it, in pipeline order.
 */

import { constraintMatches } from './constraint.js';
import type { NodeTable } from './node-table.js';
import { normaliseArch, type Requirement } from './requirements.js';
import type { SchedNode } from './types.js';

export interface Filter {
  name: string;
  /** null when the node passes; otherwise the reason, phrased to be followed by " on N nodes". */
  reject(table: NodeTable, i: number, req: Requirement): string | null;
}

function platformSupported(node: SchedNode, req: Requirement): boolean {
  if (req.platforms.length === 0) return true;
  const os = (node.platform?.os ?? '').toLowerCase();
  const arch = normaliseArch(node.platform?.arch ?? '');
  for (const p of req.platforms) {
    if ((p.os === '' || p.os === os) && (p.arch === '' || p.arch === arch)) return true;
  }
  return false;
}

export const FILTERS: readonly Filter[] = [
  {
    name: 'ready',
    reject: (t, i) => (t.nodes[i]!.status === 'ready' ? null : 'node down'),
  },
  {
    name: 'availability',
    reject: (t, i) => {
      const a = t.nodes[i]!.availability;
      return a === 'active' ? null : a === 'drain' ? 'node drained' : 'node paused';
    },
  },
  {
    name: 'platform',
    reject: (t, i, req) => {
      const node = t.nodes[i]!;
      if (platformSupported(node, req)) return null;
      return `platform ${node.platform?.os ?? '?'}/${node.platform?.arch ?? '?'} not supported by the image`;
    },
  },
  {
    name: 'constraint',
    reject: (t, i, req) => {
      const node = t.nodes[i]!;
      for (const c of req.constraints) if (!constraintMatches(node, c)) return `constraint ${c.text} not met`;
      return null;
    },
  },
  {
    name: 'memory',
    reject: (t, i, req) => (t.freeMemory[i]! >= req.memory ? null : 'insufficient memory'),
  },
  {
    name: 'cpu',
    reject: (t, i, req) => (t.freeCpu[i]! >= req.cpu ? null : 'insufficient cpu'),
  },
  {
    name: 'generic',
    reject: (t, i, req) => {
      const free = t.genericFree[i];
      for (const [k, v] of req.generic) if ((free?.get(k) ?? 0) < v) return `insufficient ${k}`;
      return null;
    },
  },
  {
    name: 'ports',
    reject: (t, i, req) => {
      const used = t.portsInUse[i];
      if (!used) return null;
      for (const p of req.ports) if (used.has(p)) return `host port ${p} in use`;
      return null;
    },
  },
  {
    name: 'max-replicas',
    reject: (t, i, req) =>
      req.maxReplicasPerNode > 0 && t.serviceCount(req.serviceId, i) >= req.maxReplicasPerNode
        ? `max replicas per node (${req.maxReplicasPerNode}) reached`
        : null,
  },
];

/** Readiness, availability, platform, constraints, and the node having each generic resource at all. */
export function staticallyEligible(table: NodeTable, i: number, req: Requirement): boolean {
  if (table.schedulable[i] !== 1) return false;
  const node = table.nodes[i]!;
  if (!platformSupported(node, req)) return false;
  for (const c of req.constraints) if (!constraintMatches(node, c)) return false;
  if (req.generic.length > 0) {
    const total = table.genericTotal[i];
    for (const [k, v] of req.generic) if ((total?.get(k) ?? 0) < v) return false;
  }
  return true;
}

/** The dynamic checks other than CPU and memory (which the node index already guarantees). */
export function fitsBeyondCpuMemory(table: NodeTable, i: number, req: Requirement): boolean {
  if (req.generic.length > 0) {
    const free = table.genericFree[i];
    for (const [k, v] of req.generic) if ((free?.get(k) ?? 0) < v) return false;
  }
  if (req.ports.length > 0) {
    const used = table.portsInUse[i];
    if (used) for (const p of req.ports) if (used.has(p)) return false;
  }
  if (req.maxReplicasPerNode > 0 && table.serviceCount(req.serviceId, i) >= req.maxReplicasPerNode) return false;
  return true;
}

/** Every filter at once: can node i take one more task of `req` right now? */
export function fitsNow(table: NodeTable, i: number, req: Requirement): boolean {
  return (
    staticallyEligible(table, i, req) &&
    table.freeCpu[i]! >= req.cpu &&
    table.freeMemory[i]! >= req.memory &&
    fitsBeyondCpuMemory(table, i, req)
  );
}

/** The first filter's reason for rejecting node i, or null if it passes the pipeline. */
export function rejectionOf(table: NodeTable, i: number, req: Requirement): string | null {
  for (const f of FILTERS) {
    const r = f.reject(table, i, req);
    if (r !== null) return r;
  }
  return null;
}

/** `no suitable node (insufficient memory on 7 nodes; constraint node.labels.zone==a not met on 3 nodes)` */
export function explainRejections(table: NodeTable, req: Requirement, exclude?: (i: number) => boolean): string {
  if (req.error !== undefined) return req.error;
  const counts = new Map<string, number>();
  let considered = 0;
  for (let i = 0; i < table.size; i++) {
    if (exclude?.(i)) continue;
    considered++;
    const r = rejectionOf(table, i, req);
    if (r !== null) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  if (considered === 0) return 'no suitable node (no nodes in the cluster)';
  if (counts.size === 0) return 'no suitable node (every node passes the filters, yet none was chosen)';
  const order = new Map(FILTERS.map((f, k) => [f.name, k] as const));
  const parts = [...counts.entries()]
    // Pipeline order first, then the bigger count, then by text: stable and readable.
    .map(([reason, n]) => ({ reason, n, rank: order.get(filterNameOf(reason)) ?? 99 }))
    .sort((a, b) => a.rank - b.rank || b.n - a.n || (a.reason < b.reason ? -1 : 1))
    .map(({ reason, n }) => `${reason} on ${n} node${n === 1 ? '' : 's'}`);
  return `no suitable node (${parts.join('; ')})`;
}

function filterNameOf(reason: string): string {
  if (reason === 'node down') return 'ready';
  if (reason === 'node drained' || reason === 'node paused') return 'availability';
  if (reason.startsWith('platform ')) return 'platform';
  if (reason.startsWith('constraint ')) return 'constraint';
  if (reason === 'insufficient memory') return 'memory';
  if (reason === 'insufficient cpu') return 'cpu';
  if (reason.startsWith('insufficient ')) return 'generic';
  if (reason.startsWith('host port ')) return 'ports';
  return 'max-replicas';
}
