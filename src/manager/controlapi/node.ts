/** The control API's nodes: list, inspect, update (availability, labels, role), remove. */
import { ControlError } from '../../api/errors.js';
import type { NodeObject } from '../../api/objects.js';
import { ValidationError } from '../../api/validation.js';
import { recordRemovedNodes } from '../state/removed-nodes.js';
import type { Action } from '../state/store.js';
import type { ControlContext } from './context.js';

export async function listNodes(ctx: ControlContext): Promise<NodeObject[]> {
  await ctx.log.barrier();
  return ctx.store.list('node').sort((a, b) => a.description.hostname.localeCompare(b.description.hostname));
}

export async function getNode(ctx: ControlContext, ref: string): Promise<NodeObject> {
  await ctx.log.barrier();
  return ctx.resolve('node', ref, (n) => n.description.hostname);
}

export async function updateNode(ctx: ControlContext, ref: string, version: number, spec: Partial<NodeObject['spec']>): Promise<NodeObject> {
  const node = await getNode(ctx, ref);
  if (spec.availability && !['active', 'pause', 'drain'].includes(spec.availability)) {
    throw new ValidationError(`invalid availability "${spec.availability}": expected active, pause or drain`);
  }
  if (spec.role && !['manager', 'worker'].includes(spec.role)) throw new ValidationError(`invalid role "${spec.role}": expected manager or worker`);
  if (spec.role === 'worker' && node.spec.role === 'manager') {
    // The leader removes it from raft; the node then restarts as a worker. Keep at least one manager.
    const managers = ctx.store.list('node').filter((n) => n.spec.role === 'manager' && n.id !== node.id);
    if (managers.length === 0) throw new ControlError(`node ${node.description.hostname} is the last manager of the swarm: it cannot be demoted`, 'conflict');
  }
  if (spec.role === 'manager' && node.spec.role === 'worker' && node.status.state !== 'ready') {
    throw new ControlError(`node ${node.description.hostname} is ${node.status.state}: only a ready node can be promoted`, 'conflict');
  }
  const next: NodeObject = { ...node, spec: { ...node.spec, ...spec, labels: spec.labels ?? node.spec.labels } };
  const [updated] = await ctx.write([{ op: 'update', kind: 'node', object: next, expectVersion: version || node.meta.version }]);
  return updated as NodeObject;
}

export async function removeNode(ctx: ControlContext, ref: string, force: boolean): Promise<void> {
  const node = await getNode(ctx, ref);
  if (node.spec.role === 'manager') {
    throw new ControlError(`node ${node.description.hostname} is a manager: demote it before removing it`, 'conflict');
  }
  if (node.status.state === 'ready' && !force) {
    throw new ControlError(`node ${node.description.hostname} is not down and can't be removed: stop it first, or use --force`, 'conflict');
  }
  // Its containers' network attachments go with it: nothing else would ever release their addresses.
  const attachments = ctx.store.tasksOfNode(node.id).filter((t) => t.attachment);
  await ctx.write([{ op: 'delete', kind: 'node', id: node.id, expectVersion: node.meta.version },
    ...attachments.map((t): Action => ({ op: 'delete', kind: 'task', id: t.id, expectVersion: t.meta.version })),
    ...recordRemovedNodes(ctx.store.list('cluster')[0], [node.id])]);
}
