/**
 * The control API's logic, independent of gRPC: validates, reads the store linearizably, and turns
 * requests into compare-and-set proposals. Any manager can serve it: proposals go through raft to
 * the leader, and the store applies them in one order everywhere. One file per resource; this class
 * is the one handle the gRPC services and the log broker hold.
 */
import type { NetworkObject, NodeObject, ServiceObject, TaskObject } from '../../api/objects.js';
import type { ClusterLog } from '../state/cluster-log.js';
import type { ClusterStore } from '../state/store.js';
import { ControlContext, type ConstraintCheck, type ImageResolver } from './context.js';
import * as networks from './network.js';
import * as nodes from './node.js';
import * as services from './service.js';
import * as tasks from './task.js';

export type { ConstraintCheck, ImageResolver } from './context.js';
export type { ServiceSummary } from './service.js';

export class ControlService {
  private readonly ctx: ControlContext;

  constructor(store: ClusterStore, log: ClusterLog, checkConstraint?: ConstraintCheck, now?: () => string, images?: ImageResolver) {
    this.ctx = new ControlContext(store, log, checkConstraint, now, images);
  }

  listNodes = (): Promise<NodeObject[]> => nodes.listNodes(this.ctx);
  getNode = (ref: string): Promise<NodeObject> => nodes.getNode(this.ctx, ref);
  updateNode = (ref: string, version: number, spec: Partial<NodeObject['spec']>): Promise<NodeObject> => nodes.updateNode(this.ctx, ref, version, spec);
  removeNode = (ref: string, force: boolean): Promise<void> => nodes.removeNode(this.ctx, ref, force);

  createService = (raw: unknown, opts?: services.ImageOptions): Promise<ServiceObject> => services.createService(this.ctx, raw, opts);
  listServices = (): Promise<services.ServiceSummary[]> => services.listServices(this.ctx);
  getService = (ref: string): Promise<ServiceObject> => services.getService(this.ctx, ref);
  updateService = (ref: string, version: number, raw: unknown, opts?: services.UpdateOptions): Promise<ServiceObject> => services.updateService(this.ctx, ref, version, raw, opts);
  removeService = (ref: string): Promise<void> => services.removeService(this.ctx, ref);

  createNetwork = (raw: unknown): Promise<NetworkObject> => networks.createNetwork(this.ctx, raw);
  listNetworks = (): Promise<NetworkObject[]> => networks.listNetworks(this.ctx);
  getNetwork = (ref: string): Promise<NetworkObject> => networks.getNetwork(this.ctx, ref);
  inspectNetwork = (ref: string) => networks.inspectNetwork(this.ctx, ref);
  removeNetwork = (ref: string): Promise<void> => networks.removeNetwork(this.ctx, ref);

  listTasks = (filter: tasks.TaskFilter): Promise<TaskObject[]> => tasks.listTasks(this.ctx, filter);
}
