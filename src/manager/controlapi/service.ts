/**
 * The control API's services: create, update (a new spec, rollback, --force, a rebalance request),
 * list with their running counts, remove. It records what was asked; the leader's orchestrators make
 * the tasks.
 */
import { ControlError } from '../../api/errors.js';
import { newObjectId } from '../../api/ids.js';
import { isTerminal, type ServiceObject, type ServiceSpec } from '../../api/objects.js';
import { serviceSpecSchema, withServiceDefaults } from '../../api/service-spec.js';
import { validate, ValidationError } from '../../api/validation.js';
import type { Action } from '../state/store.js';
import type { ControlContext } from './context.js';

/** How the image is recorded: pinned to the registry's digest (the default, as docker), and with the manager's credentials. */
export interface ImageOptions { noResolveImage?: boolean; withRegistryAuth?: boolean }

export interface UpdateOptions extends ImageOptions { rollback?: boolean; force?: boolean; rebalance?: boolean }

export interface ServiceSummary {
  service: ServiceObject;
  running: number;
  desired: number;
}

function checkSpec(ctx: ControlContext, raw: unknown): ServiceSpec {
  // Credentials are the manager's to add (--with-registry-auth), never a client's to set.
  const task = (raw as { task?: { registryAuth?: unknown } } | undefined)?.task;
  if (task) delete task.registryAuth;
  const spec = validate('service spec', serviceSpecSchema, withServiceDefaults((raw ?? {}) as ServiceSpec)) as ServiceSpec;
  for (const c of spec.task.placement.constraints) {
    const problem = ctx.checkConstraint(c);
    if (problem) throw new ValidationError(`invalid constraint "${c}": ${problem}`);
  }
  const published = spec.endpoint.ports.map((p) => `${p.publishedPort}/${p.protocol}`).filter((p) => !p.startsWith('0/'));
  const dup = published.find((p, i) => published.indexOf(p) !== i);
  if (dup) throw new ValidationError(`published port ${dup} is given twice`);
  return spec;
}

/**
 * The image as the tasks will run it: with the manager's credentials for its registry when asked,
 * and pinned to the digest its tag names now, so that every replica runs the same bits even when
 * the tag moves. An image already pinned, or that no registry has (imported on the nodes), stays as it is.
 */
async function recordImage(ctx: ControlContext, spec: ServiceSpec, opts: ImageOptions, kept?: ServiceSpec['task']['registryAuth']): Promise<ServiceSpec> {
  const images = ctx.images;
  if (!images) return spec;
  const registryAuth = opts.withRegistryAuth ? await images.authFor(spec.task.image) : kept;
  let image = spec.task.image;
  if (!opts.noResolveImage && !image.includes('@')) {
    // As docker: an image the registry cannot tell about keeps its tag, and each node pulls it as it can
    // (its tasks then say why, e.g. "No such image").
    image = (await images.pin(image, registryAuth).catch(() => undefined)) ?? image;
  }
  return { ...spec, task: { ...spec.task, image, ...(registryAuth ? { registryAuth } : {}) } };
}

export async function createService(ctx: ControlContext, raw: unknown, opts: ImageOptions = {}): Promise<ServiceObject> {
  let spec = await recordImage(ctx, checkSpec(ctx, raw), opts);
  await ctx.log.barrier();
  spec = resolveNetworks(ctx, spec);
  if (ctx.store.findByName('service', spec.name)) throw new ControlError(`service name "${spec.name}" is already in use`, 'exists');
  checkPortsFree(ctx, spec, undefined);
  const service: ServiceObject = {
    id: newObjectId(), meta: { version: 0, createdAt: '', updatedAt: '' }, spec, specVersion: 1,
    endpoint: { virtualIps: [], ports: spec.endpoint.ports },
  };
  const [created] = await ctx.write([{ op: 'create', kind: 'service', object: service }]);
  return created as ServiceObject;
}

export async function listServices(ctx: ControlContext): Promise<ServiceSummary[]> {
  await ctx.log.barrier();
  return ctx.store.list('service').sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map((s) => summarise(ctx, s));
}

export function summarise(ctx: ControlContext, service: ServiceObject): ServiceSummary {
  const tasks = ctx.store.tasksOfService(service.id);
  const running = tasks.filter((t) => t.desiredState === 'running' && t.status.state === 'running').length;
  const desired = 'replicated' in service.spec.mode
    ? service.spec.mode.replicated.replicas
    : tasks.filter((t) => t.desiredState === 'running').length;
  return { service, running, desired };
}

export async function getService(ctx: ControlContext, ref: string): Promise<ServiceObject> {
  await ctx.log.barrier();
  return ctx.resolve('service', ref, (s) => s.spec.name);
}

/**
 * Replaces the spec (compare-and-set on `version`), keeping the old one for rollback. `force`
 * bumps the spec version without a change, which makes the orchestrator replace every task.
 */
export async function updateService(ctx: ControlContext, ref: string, version: number, raw: unknown, opts: UpdateOptions = {}): Promise<ServiceObject> {
  const current = await getService(ctx, ref);
  let spec: ServiceSpec;
  if (opts.rollback) {
    if (!current.previousSpec) throw new ControlError(`service ${current.spec.name} has no previous spec to roll back to`, 'conflict');
    spec = current.previousSpec;
  } else {
    spec = await recordImage(ctx, resolveNetworks(ctx, checkSpec(ctx, raw)), opts, current.spec.task.registryAuth);
  }
  // As docker: --force changes the task template, so the rolling update replaces every task.
  if (opts.force) spec = { ...spec, task: { ...spec.task, forceUpdate: (current.spec.task.forceUpdate ?? 0) + 1 } };
  if (spec.name !== current.spec.name) throw new ValidationError('a service cannot be renamed');
  checkPortsFree(ctx, spec, current.id);
  const changed = JSON.stringify(spec) !== JSON.stringify(current.spec);
  // Tasks are made from the task template: only a change there (or --force) replaces them; a
  // new replica count or update config leaves running tasks alone.
  const taskChanged = JSON.stringify(spec.task) !== JSON.stringify(current.spec.task);
  const replace = taskChanged;
  const next: ServiceObject = {
    ...current,
    spec,
    previousSpec: changed ? current.spec : current.previousSpec,
    specVersion: replace ? current.specVersion + 1 : current.specVersion,
    endpoint: { ...current.endpoint, ports: spec.endpoint.ports },
    // A new task template starts a rolling update (orchestrator/updater.ts), resumed from here by any leader.
    ...(replace ? { updateStatus: {
      state: opts.rollback ? 'rollback_started' as const : 'updating' as const,
      message: opts.rollback ? 'manually requested rollback' : 'update in progress', startedAt: ctx.now(), completedAt: '', failures: 0, nextBatchAt: '',
    } } : {}),
  };
  // --rebalance is a request the leader acts on (orchestrator/rebalance.ts): the API records intent, never plans tasks.
  if (opts.rebalance) next.rebalanceRequestedAt = ctx.now();
  const [updated] = await ctx.write([{ op: 'update', kind: 'service', object: next, expectVersion: version || current.meta.version }]);
  return updated as ServiceObject;
}

/** Deletes the service; its tasks are told to go away in the same proposal and deleted once stopped. */
export async function removeService(ctx: ControlContext, ref: string): Promise<void> {
  const service = await getService(ctx, ref);
  const actions: Action[] = [{ op: 'delete', kind: 'service', id: service.id, expectVersion: service.meta.version }];
  for (const t of ctx.store.tasksOfService(service.id)) {
    if (isTerminal(t.status.state) || !t.nodeId) actions.push({ op: 'delete', kind: 'task', id: t.id });
    else actions.push({ op: 'update', kind: 'task', object: { ...t, desiredState: 'remove' }, expectVersion: t.meta.version });
  }
  await ctx.write(actions);
}

/** Network names become ids: a service keeps joining its network when it is renamed. */
function resolveNetworks(ctx: ControlContext, spec: ServiceSpec): ServiceSpec {
  const ids: string[] = [];
  for (const ref of spec.task.networks) {
    const n = ctx.resolve('network', ref, (o) => o.spec.name);
    if (n.spec.ingress) throw new ValidationError(`network ${n.spec.name} is the routing mesh's: services join it by publishing ports (--publish), not with --network`);
    if (!ids.includes(n.id)) ids.push(n.id);
  }
  return { ...spec, task: { ...spec.task, networks: ids } };
}

function checkPortsFree(ctx: ControlContext, spec: ServiceSpec, self: string | undefined): void {
  for (const p of spec.endpoint.ports) {
    if (p.publishedPort === 0 || p.publishMode !== 'ingress') continue;
    for (const other of ctx.store.list('service')) {
      if (other.id === self) continue;
      if (other.endpoint.ports.some((q) => q.publishedPort === p.publishedPort && q.protocol === p.protocol && q.publishMode === 'ingress')) {
        throw new ControlError(`port ${p.publishedPort}/${p.protocol} is already published by service ${other.spec.name}`, 'exists');
      }
    }
  }
}
