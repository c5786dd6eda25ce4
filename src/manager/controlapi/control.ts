/**
 * The control API's logic, independent of gRPC: validates, reads the store linearizably, and turns
 * requests into compare-and-set proposals. Any manager can serve it: proposals go through raft to
 * the leader, and the store applies them in one order everywhere.
 */
import { ControlError } from '../../api/errors.js';
import { newObjectId } from '../../api/ids.js';
import { validate, ValidationError } from '../../api/validation.js';
import type { ClusterLog } from '../state/cluster-log.js';
import { IpamError } from '../allocator/ipam.js';
import { AllocationError, chooseNetworkAddressing } from '../allocator/allocator.js';
import { networkEndpoints, type NetworkEndpoint } from '../allocator/network-endpoints.js';
import { networkSpecSchema } from '../../api/network-spec.js';
import { recordRemovedNodes } from '../state/removed-nodes.js';
import { isTerminal, matchRef, type NetworkObject, type NodeObject, type ServiceObject, type ServiceSpec, type TaskObject } from '../../api/objects.js';
import { serviceSpecSchema, withServiceDefaults } from '../../api/service-spec.js';
import { StoreError, type Action, type ClusterStore } from '../state/store.js';

export type ConstraintCheck = (expr: string) => string | undefined; // an error message, or undefined when valid

export { ControlError };

function fromStoreError(err: StoreError): ControlError {
  return new ControlError(err.message, err.code === 'not-found' ? 'not-found' : err.code === 'exists' ? 'exists' : err.code === 'conflict' ? 'conflict' : 'invalid');
}

export interface ServiceSummary {
  service: ServiceObject;
  running: number;
  desired: number;
}

export class ControlService {
  constructor(
    private readonly store: ClusterStore,
    private readonly log: ClusterLog,
    private readonly checkConstraint: ConstraintCheck = () => undefined,
    private readonly now: () => string = () => new Date().toISOString(),
  ) {}

  private async write(actions: Action[]) {
    const result = await this.log.propose({ actions, time: this.now() });
    if (!result.ok) throw fromStoreError(result.error);
    return result.objects;
  }

  // ---- nodes ----

  async listNodes(): Promise<NodeObject[]> {
    await this.log.barrier();
    return this.store.list('node').sort((a, b) => a.description.hostname.localeCompare(b.description.hostname));
  }

  async getNode(ref: string): Promise<NodeObject> {
    await this.log.barrier();
    return this.resolve('node', ref, (n) => n.description.hostname);
  }

  async updateNode(ref: string, version: number, spec: Partial<NodeObject['spec']>): Promise<NodeObject> {
    const node = await this.getNode(ref);
    if (spec.availability && !['active', 'pause', 'drain'].includes(spec.availability)) {
      throw new ValidationError(`invalid availability "${spec.availability}": expected active, pause or drain`);
    }
    if (spec.role && !['manager', 'worker'].includes(spec.role)) throw new ValidationError(`invalid role "${spec.role}": expected manager or worker`);
    if (spec.role === 'worker' && node.spec.role === 'manager') {
      // The leader removes it from raft; the node then restarts as a worker. Keep at least one manager.
      const managers = this.store.list('node').filter((n) => n.spec.role === 'manager' && n.id !== node.id);
      if (managers.length === 0) throw new ControlError(`node ${node.description.hostname} is the last manager of the swarm: it cannot be demoted`, 'conflict');
    }
    if (spec.role === 'manager' && node.spec.role === 'worker' && node.status.state !== 'ready') {
      throw new ControlError(`node ${node.description.hostname} is ${node.status.state}: only a ready node can be promoted`, 'conflict');
    }
    const next: NodeObject = { ...node, spec: { ...node.spec, ...spec, labels: spec.labels ?? node.spec.labels } };
    const [updated] = await this.write([{ op: 'update', kind: 'node', object: next, expectVersion: version || node.meta.version }]);
    return updated as NodeObject;
  }

  async removeNode(ref: string, force: boolean): Promise<void> {
    const node = await this.getNode(ref);
    if (node.spec.role === 'manager') {
      throw new ControlError(`node ${node.description.hostname} is a manager: demote it before removing it`, 'conflict');
    }
    if (node.status.state === 'ready' && !force) {
      throw new ControlError(`node ${node.description.hostname} is not down and can't be removed: stop it first, or use --force`, 'conflict');
    }
    // Its containers' network attachments go with it: nothing else would ever release their addresses.
    const attachments = this.store.tasksOfNode(node.id).filter((t) => t.attachment);
    await this.write([{ op: 'delete', kind: 'node', id: node.id, expectVersion: node.meta.version },
      ...attachments.map((t): Action => ({ op: 'delete', kind: 'task', id: t.id, expectVersion: t.meta.version })),
      ...recordRemovedNodes(this.store.list('cluster')[0], [node.id])]);
  }

  // ---- services ----

  private checkSpec(raw: unknown): ServiceSpec {
    const spec = validate('service spec', serviceSpecSchema, withServiceDefaults((raw ?? {}) as ServiceSpec)) as ServiceSpec;
    for (const c of spec.task.placement.constraints) {
      const problem = this.checkConstraint(c);
      if (problem) throw new ValidationError(`invalid constraint "${c}": ${problem}`);
    }
    const published = spec.endpoint.ports.map((p) => `${p.publishedPort}/${p.protocol}`).filter((p) => !p.startsWith('0/'));
    const dup = published.find((p, i) => published.indexOf(p) !== i);
    if (dup) throw new ValidationError(`published port ${dup} is given twice`);
    return spec;
  }

  async createService(raw: unknown): Promise<ServiceObject> {
    let spec = this.checkSpec(raw);
    await this.log.barrier();
    spec = this.resolveNetworks(spec);
    if (this.store.findByName('service', spec.name)) throw new ControlError(`service name "${spec.name}" is already in use`, 'exists');
    this.checkPortsFree(spec, undefined);
    const service: ServiceObject = {
      id: newObjectId(), meta: { version: 0, createdAt: '', updatedAt: '' }, spec, specVersion: 1,
      endpoint: { virtualIps: [], ports: spec.endpoint.ports },
    };
    const [created] = await this.write([{ op: 'create', kind: 'service', object: service }]);
    return created as ServiceObject;
  }

  async listServices(): Promise<ServiceSummary[]> {
    await this.log.barrier();
    return this.store.list('service').sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map((s) => this.summarise(s));
  }

  summarise(service: ServiceObject): ServiceSummary {
    const tasks = this.store.tasksOfService(service.id);
    const running = tasks.filter((t) => t.desiredState === 'running' && t.status.state === 'running').length;
    const desired = 'replicated' in service.spec.mode
      ? service.spec.mode.replicated.replicas
      : tasks.filter((t) => t.desiredState === 'running').length;
    return { service, running, desired };
  }

  async getService(ref: string): Promise<ServiceObject> {
    await this.log.barrier();
    return this.resolve('service', ref, (s) => s.spec.name);
  }

  /**
   * Replaces the spec (compare-and-set on `version`), keeping the old one for rollback. `force`
   * bumps the spec version without a change, which makes the orchestrator replace every task.
   */
  async updateService(ref: string, version: number, raw: unknown, opts: { rollback?: boolean; force?: boolean; rebalance?: boolean } = {}): Promise<ServiceObject> {
    const current = await this.getService(ref);
    let spec: ServiceSpec;
    if (opts.rollback) {
      if (!current.previousSpec) throw new ControlError(`service ${current.spec.name} has no previous spec to roll back to`, 'conflict');
      spec = current.previousSpec;
    } else {
      spec = this.resolveNetworks(this.checkSpec(raw));
    }
    // As docker: --force changes the task template, so the rolling update replaces every task.
    if (opts.force) spec = { ...spec, task: { ...spec.task, forceUpdate: (current.spec.task.forceUpdate ?? 0) + 1 } };
    if (spec.name !== current.spec.name) throw new ValidationError('a service cannot be renamed');
    this.checkPortsFree(spec, current.id);
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
        message: opts.rollback ? 'manually requested rollback' : 'update in progress', startedAt: this.now(), completedAt: '', failures: 0, nextBatchAt: '',
      } } : {}),
    };
    // --rebalance is a request the leader acts on (orchestrator/rebalance.ts): the API records intent, never plans tasks.
    if (opts.rebalance) next.rebalanceRequestedAt = this.now();
    const [updated] = await this.write([{ op: 'update', kind: 'service', object: next, expectVersion: version || current.meta.version }]);
    return updated as ServiceObject;
  }

  /** Deletes the service; its tasks are told to go away in the same proposal and deleted once stopped. */
  async removeService(ref: string): Promise<void> {
    const service = await this.getService(ref);
    const actions: Action[] = [{ op: 'delete', kind: 'service', id: service.id, expectVersion: service.meta.version }];
    for (const t of this.store.tasksOfService(service.id)) {
      if (isTerminal(t.status.state) || !t.nodeId) actions.push({ op: 'delete', kind: 'task', id: t.id });
      else actions.push({ op: 'update', kind: 'task', object: { ...t, desiredState: 'remove' }, expectVersion: t.meta.version });
    }
    await this.write(actions);
  }

  /** Network names become ids: a service keeps joining its network when it is renamed. */
  private resolveNetworks(spec: ServiceSpec): ServiceSpec {
    const ids: string[] = [];
    for (const ref of spec.task.networks) {
      const n = this.resolve('network', ref, (o) => o.spec.name);
      if (n.spec.ingress) throw new ValidationError(`network ${n.spec.name} is the routing mesh's: services join it by publishing ports (--publish), not with --network`);
      if (!ids.includes(n.id)) ids.push(n.id);
    }
    return { ...spec, task: { ...spec.task, networks: ids } };
  }

  // ---- networks ----

  async createNetwork(raw: unknown): Promise<NetworkObject> {
    const spec = validate('network spec', networkSpecSchema, raw);
    await this.log.barrier();
    if (this.store.findByName('network', spec.name)) throw new ControlError(`network name "${spec.name}" is already in use`, 'exists');
    let addressing;
    try {
      addressing = chooseNetworkAddressing(this.store.list('network'), spec);
    } catch (err) {
      if (err instanceof IpamError) throw new ValidationError(err.message);
      if (err instanceof AllocationError) throw new ControlError(err.message, 'conflict');
      throw err;
    }
    const network: NetworkObject = {
      id: newObjectId(), meta: { version: 0, createdAt: '', updatedAt: '' }, vni: addressing.vni,
      spec: { ...spec, subnet: addressing.subnet, gateway: addressing.gateway, ingress: false },
    };
    const [created] = await this.write([{ op: 'create', kind: 'network', object: network }]);
    return created as NetworkObject;
  }

  async listNetworks(): Promise<NetworkObject[]> {
    await this.log.barrier();
    return this.store.list('network').sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  }

  async getNetwork(ref: string): Promise<NetworkObject> {
    await this.log.barrier();
    return this.resolve('network', ref, (n) => n.spec.name);
  }

  /** The network and what is on it now (network-endpoints.ts). */
  async inspectNetwork(ref: string): Promise<{ network: NetworkObject; endpoints: NetworkEndpoint[] }> {
    const network = await this.getNetwork(ref);
    return { network, endpoints: networkEndpoints(network, { services: this.store.list('service'), tasks: this.store.list('task'), nodes: this.store.list('node') }) };
  }

  /** Refused while a service names the network or a task still holds an address on it. */
  async removeNetwork(ref: string): Promise<void> {
    const network = await this.getNetwork(ref);
    const services = this.store.list('service');
    const users = network.spec.ingress
      ? services.filter((s) => s.spec.endpoint.ports.length > 0)
      : services.filter((s) => s.spec.task.networks.includes(network.id));
    if (users.length > 0) {
      throw new ControlError(`network ${network.spec.name} is in use by service${users.length > 1 ? 's' : ''} ${users.map((s) => s.spec.name).join(', ')}`, 'conflict');
    }
    const attached = this.store.list('task').filter((t) => !isTerminal(t.status.state) && t.networks.some((a) => a.networkId === network.id));
    const containers = attached.filter((t) => t.attachment).map((t) => t.attachment!.containerName);
    if (containers.length > 0) {
      throw new ControlError(`network ${network.spec.name} is in use by container${containers.length > 1 ? 's' : ''} ${containers.join(', ')}`, 'conflict');
    }
    if (attached.length > 0) throw new ControlError(`network ${network.spec.name} is in use by ${attached.length} task(s) still stopping: try again in a moment`, 'conflict');
    await this.write([{ op: 'delete', kind: 'network', id: network.id, expectVersion: network.meta.version }]);
  }

  // ---- tasks ----

  async listTasks(filter: { service?: string; node?: string; desiredState?: string }): Promise<TaskObject[]> {
    await this.log.barrier();
    let tasks: TaskObject[];
    if (filter.service) tasks = this.store.tasksOfService(this.resolve('service', filter.service, (s) => s.spec.name).id);
    // A node's tasks, as `docker node ps`: its containers' network attachments are not tasks to the user.
    else if (filter.node) tasks = this.store.tasksOfNode(this.resolve('node', filter.node, (n) => n.description.hostname).id).filter((t) => !t.attachment);
    else tasks = this.store.list('task');
    if (filter.node && filter.service) {
      const nodeId = this.resolve('node', filter.node, (n) => n.description.hostname).id;
      tasks = tasks.filter((t) => t.nodeId === nodeId);
    }
    if (filter.desiredState) tasks = tasks.filter((t) => t.desiredState === filter.desiredState);
    // As `docker service ps`: by slot (global tasks: by node), the newest task of each first.
    return tasks.sort((a, b) => a.slot - b.slot || (a.slot === 0 ? a.nodeId.localeCompare(b.nodeId) : 0) || b.meta.version - a.meta.version);
  }

  // ---- helpers ----

  /** By exact id, exact name, or unique id prefix: what docker accepts. */
  private resolve<K extends 'node' | 'service' | 'network'>(kind: K, ref: string, nameOf: (o: any) => string): K extends 'node' ? NodeObject : K extends 'service' ? ServiceObject : NetworkObject {
    if (!ref) throw new ValidationError(`a ${kind} id or name is required`);
    const { match, ambiguous } = matchRef(this.store.list(kind) as (NodeObject | ServiceObject | NetworkObject)[], ref, nameOf);
    if (match) return match as never;
    if (ambiguous) throw new ControlError(`${kind} ${ref} is ambiguous (${ambiguous} matches)`, 'invalid');
    throw new ControlError(`${kind} ${ref} not found`, 'not-found');
  }

  private checkPortsFree(spec: ServiceSpec, self: string | undefined): void {
    for (const p of spec.endpoint.ports) {
      if (p.publishedPort === 0 || p.publishMode !== 'ingress') continue;
      for (const other of this.store.list('service')) {
        if (other.id === self) continue;
        if (other.endpoint.ports.some((q) => q.publishedPort === p.publishedPort && q.protocol === p.protocol && q.publishMode === 'ingress')) {
          throw new ControlError(`port ${p.publishedPort}/${p.protocol} is already published by service ${other.spec.name}`, 'exists');
        }
      }
    }
  }
}
