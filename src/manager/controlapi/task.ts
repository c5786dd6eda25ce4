/** The control API's tasks: `service ps` and `node ps`, read-only (tasks are the orchestrators' to write). */
import type { TaskObject } from '../../api/objects.js';
import type { ControlContext } from './context.js';

export interface TaskFilter { service?: string; node?: string; desiredState?: string }

export async function listTasks(ctx: ControlContext, filter: TaskFilter): Promise<TaskObject[]> {
  await ctx.log.barrier();
  let tasks: TaskObject[];
  if (filter.service) tasks = ctx.store.tasksOfService(ctx.resolve('service', filter.service, (s) => s.spec.name).id);
  // A node's tasks, as `docker node ps`: its containers' network attachments are not tasks to the user.
  else if (filter.node) tasks = ctx.store.tasksOfNode(ctx.resolve('node', filter.node, (n) => n.description.hostname).id).filter((t) => !t.attachment);
  else tasks = ctx.store.list('task');
  if (filter.node && filter.service) {
    const nodeId = ctx.resolve('node', filter.node, (n) => n.description.hostname).id;
    tasks = tasks.filter((t) => t.nodeId === nodeId);
  }
  if (filter.desiredState) tasks = tasks.filter((t) => t.desiredState === filter.desiredState);
  // As `docker service ps`: by slot (global tasks: by node), the newest task of each first.
  return tasks.sort((a, b) => a.slot - b.slot || (a.slot === 0 ? a.nodeId.localeCompare(b.nodeId) : 0) || b.meta.version - a.meta.version);
}
