/**
 * The manager's gRPC surfaces: ControlAPI on the local socket (root-only), and CA and Dispatcher
 * between nodes over TLS, where the caller's certificate (checked against the swarm's CA) says
 * which node it is and with which role.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import { ValidationError } from '../api/validation.js';
import { CertificateError } from '../ca/node-certs.js';
import { JoinTokenError } from '../ca/join-token.js';
import { peerIdentity } from '../ca/tls-credentials.js';
import { ControlError } from '../api/errors.js';
import { DispatcherError, type SessionMessage } from './dispatcher/dispatcher.js';
import { serviceLogsHandler } from './logbroker.js';
import type { Manager } from './manager.js';

const PROTO = 'control.proto';
export const controlService = () => serviceClient(PROTO, 'tsswarm.swarm.v1.ControlAPI').service;
export const caService = () => serviceClient(PROTO, 'tsswarm.swarm.v1.CA').service;
export const dispatcherService = () => serviceClient(PROTO, 'tsswarm.swarm.v1.Dispatcher').service;

export const ANSWERED_BY_DAEMON = 'tsswarm-answered';

export function toGrpcStatus(err: unknown): Partial<grpc.StatusObject> {
  const message = err instanceof Error ? err.message : String(err);
  let code = grpc.status.INTERNAL;
  if (err instanceof ValidationError || err instanceof JoinTokenError) code = grpc.status.INVALID_ARGUMENT;
  else if (err instanceof CertificateError) code = grpc.status.PERMISSION_DENIED;
  else if (err instanceof ControlError) {
    code = { 'not-found': grpc.status.NOT_FOUND, exists: grpc.status.ALREADY_EXISTS, conflict: grpc.status.FAILED_PRECONDITION, invalid: grpc.status.INVALID_ARGUMENT, unavailable: grpc.status.UNAVAILABLE }[err.code];
  } else if (err instanceof DispatcherError) code = err.code === 'not-leader' ? grpc.status.UNAVAILABLE : grpc.status.FAILED_PRECONDITION;
  // Marks the status as the daemon's answer, so that a client tells "unavailable: no quorum" from "cannot connect".
  const metadata = new grpc.Metadata();
  metadata.set(ANSWERED_BY_DAEMON, '1');
  return { code, details: message, metadata };
}

const EXPECTED = [ValidationError, JoinTokenError, CertificateError, ControlError, DispatcherError];

function unary(logger: Logger, name: string, fn: (call: grpc.ServerUnaryCall<any, any>) => Promise<unknown>): grpc.handleUnaryCall<any, any> {
  return (call, callback) => {
    fn(call).then((res) => callback(null, res), (err) => {
      if (!EXPECTED.some((E) => err instanceof E)) logger.error({ rpc: name, err }, 'request failed');
      callback(toGrpcStatus(err) as grpc.ServiceError);
    });
  };
}

/** ControlAPI handlers; `manager()` is undefined on a worker, which answers as docker does. */
export function controlHandlers(manager: () => Manager | undefined, logger: Logger): grpc.UntypedServiceImplementation {
  const m = (): Manager => {
    const mgr = manager();
    if (!mgr) throw new ControlError('this node is not a swarm manager: run the command on a manager node, or promote this node', 'unavailable');
    return mgr;
  };
  const u = (name: string, fn: (call: grpc.ServerUnaryCall<any, any>) => Promise<unknown>) => unary(logger, name, fn);
  return {
    ListNodes: u('ListNodes', async () => ({ nodes: await m().control.listNodes() })),
    GetNode: u('GetNode', async (call) => m().control.getNode(call.request.id)),
    UpdateNode: u('UpdateNode', async (call) => m().control.updateNode(call.request.id, call.request.version, stripEmpty(call.request.spec ?? {}))),
    RemoveNode: u('RemoveNode', async (call) => { await m().control.removeNode(call.request.id, call.request.force); return {}; }),
    CreateService: u('CreateService', async (call) => {
      const r = call.request;
      return withoutCredentials(await m().control.createService(r.spec, { noResolveImage: r.noResolveImage, withRegistryAuth: r.withRegistryAuth }));
    }),
    ListServices: u('ListServices', async () => withoutCredentials({ services: await m().control.listServices() })),
    GetService: u('GetService', async (call) => withoutCredentials(await m().control.getService(call.request.id))),
    UpdateService: u('UpdateService', async (call) => {
      const r = call.request;
      return withoutCredentials(await m().control.updateService(r.id, r.version, r.spec, {
        rollback: r.rollback, force: r.force, rebalance: r.rebalance, noResolveImage: r.noResolveImage, withRegistryAuth: r.withRegistryAuth,
      }));
    }),
    RemoveService: u('RemoveService', async (call) => { await m().control.removeService(call.request.id); return {}; }),
    CreateNetwork: u('CreateNetwork', async (call) => m().control.createNetwork(call.request.spec ?? {})),
    ListNetworks: u('ListNetworks', async () => ({ networks: await m().control.listNetworks() })),
    GetNetwork: u('GetNetwork', async (call) => m().control.getNetwork(call.request.id)),
    InspectNetwork: u('InspectNetwork', async (call) => m().control.inspectNetwork(call.request.id)),
    RemoveNetwork: u('RemoveNetwork', async (call) => { await m().control.removeNetwork(call.request.id); return {}; }),
    ListTasks: u('ListTasks', async (call) => withoutCredentials({ tasks: await m().control.listTasks(taskFilter(call.request)) })),
    ServiceLogs: serviceLogsHandler(() => ({ control: m().control, store: m().store, credentials: m().clusterCredentials(), logger }), toGrpcStatus),
    WatchTasks: (call: grpc.ServerWritableStream<any, any>) => {
      let mgr: Manager;
      try { mgr = m(); } catch (err) { call.emit('error', toGrpcStatus(err)); return; }
      const filter = taskFilter(call.request);
      let pending = false;
      let lastSent = '';
      const send = () => {
        if (pending) return;
        pending = true;
        // Coalesce bursts of changes into one snapshot of the service's tasks; a snapshot equal to the
        // last one (the change was to other tasks or to a node) is not sent.
        setTimeout(() => {
          pending = false;
          mgr.control.listTasks(filter).then((all) => {
            const tasks = withoutCredentials(all);
            const snapshot = JSON.stringify(tasks);
            if (snapshot === lastSent) return;
            lastSent = snapshot;
            call.write({ tasks });
          }, (err) => { call.emit('error', toGrpcStatus(err)); stop(); });
        }, 50);
      };
      const stop = mgr.store.watch((events) => { if (events.some((e) => e.kind === 'task' || e.kind === 'node')) send(); });
      call.on('cancelled', stop);
      call.on('close', stop);
      send();
    },
  };
}

/**
 * What the control API answers, without any task template's registry credentials: they go only to
 * the nodes that run the service's tasks (the dispatcher), never back to a client.
 */
function withoutCredentials<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (key, v: unknown) => (key === 'registryAuth' ? undefined : v))) as T;
}

function taskFilter(r: { serviceId?: string; nodeId?: string; desiredState?: string }) {
  return { service: r.serviceId || undefined, node: r.nodeId || undefined, desiredState: r.desiredState || undefined };
}

/** Proto3 sends "" for unset strings: an update must not read them as "set to empty". */
function stripEmpty<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== '' && v !== undefined)) as Partial<T>;
}

export function caHandlers(manager: () => Manager | undefined, logger: Logger): grpc.UntypedServiceImplementation {
  const m = (): Manager => {
    const mgr = manager();
    if (!mgr) throw new ControlError('not a manager', 'unavailable');
    return mgr;
  };
  return {
    GetRootCACertificate: unary(logger, 'GetRootCACertificate', async () => ({ certificate: Buffer.from(m().cluster().rootCA.certPem) })),
    IssueNodeCertificate: unary(logger, 'IssueNodeCertificate', async (call) => {
      const r = call.request as { csr: Buffer; token: string; hostname: string; advertiseAddr: string };
      const mgr = m();
      if (!r.token) {
        // Renewal: the caller proves who it is with the certificate it has.
        const who = await peerIdentity(call, mgr.cluster().rootCA.certPem);
        const certPem = await mgr.certificates.renewCertificate(r.csr.toString(), who);
        logger.info({ nodeId: who.nodeId, role: who.role }, 'node certificate renewed');
        return { nodeId: who.nodeId, role: who.role, certificate: Buffer.from(certPem), clusterId: who.clusterId, managers: mgr.managerAddrs(), raftId: 0 };
      }
      const issued = await mgr.certificates.issueCertificate({ csrPem: r.csr.toString(), token: r.token, hostname: r.hostname, advertiseAddr: r.advertiseAddr });
      logger.info({ nodeId: issued.nodeId, role: issued.role, hostname: r.hostname }, 'node joined: certificate issued');
      return { nodeId: issued.nodeId, role: issued.role, certificate: Buffer.from(issued.certPem), clusterId: '', managers: mgr.managerAddrs(), raftId: issued.raftId };
    }),
  };
}

export function dispatcherHandlers(manager: () => Manager | undefined, logger: Logger): grpc.UntypedServiceImplementation {
  const leader = async (call: { getAuthContext(): any }) => {
    const mgr = manager();
    if (!mgr) throw new DispatcherError('not a manager', 'not-leader');
    const who = await peerIdentity(call, mgr.cluster().rootCA.certPem);
    const { dispatcher, leaderAddr } = mgr.leaderDispatcher();
    if (!dispatcher) throw new DispatcherError(`not the leader${leaderAddr ? `; the leader is at ${leaderAddr}` : ''}`, 'not-leader');
    return { who, dispatcher };
  };
  return {
    Session: (call: grpc.ServerWritableStream<any, any>) => {
      let closed = false;
      let sessionId = '';
      let nodeId = '';
      let disp: { closeSession(n: string, s: string): void } | undefined;
      const close = () => { closed = true; if (disp) disp.closeSession(nodeId, sessionId); };
      call.on('cancelled', close);
      call.on('close', close);
      leader(call).then(async ({ who, dispatcher }) => {
        nodeId = who.nodeId;
        disp = dispatcher;
        const r = call.request as { description: any; addr: string; advertiseAddr: string };
        const session = await dispatcher.openSession(who.nodeId, who.role, normaliseDescription(r.description), r.addr, (msg: SessionMessage) => {
          if (!closed) call.write(msg);
        }, r.advertiseAddr, () => {
          if (!closed) call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'this manager is no longer the leader' });
        });
        sessionId = session.id;
        if (closed) dispatcher.closeSession(nodeId, sessionId);
      }).catch((err) => {
        if (!EXPECTED.some((E) => err instanceof E)) logger.error({ err }, 'session failed');
        call.emit('error', toGrpcStatus(err));
      });
    },
    Heartbeat: unary(logger, 'Heartbeat', async (call) => {
      const { who, dispatcher } = await leader(call);
      return { periodMs: dispatcher.heartbeat(who.nodeId, call.request.sessionId) };
    }),
    UpdateTaskStatus: unary(logger, 'UpdateTaskStatus', async (call) => {
      const { who, dispatcher } = await leader(call);
      dispatcher.updateTaskStatus(who.nodeId, call.request.sessionId, call.request.updates);
      return {};
    }),
    AttachNetwork: unary(logger, 'AttachNetwork', async (call) => {
      const { who, dispatcher } = await leader(call);
      const r = call.request as { sessionId: string; network: string; containerId: string; containerName: string };
      const task = await dispatcher.attachNetwork(who.nodeId, r.sessionId, { network: r.network, containerId: r.containerId, containerName: r.containerName });
      const network = manager()!.store.get('network', task.networks[0]!.networkId);
      return { taskId: task.id, networkId: task.networks[0]!.networkId, networkName: network?.spec.name ?? '', address: task.networks[0]!.addresses[0]!.split('/')[0] };
    }),
    DetachNetwork: unary(logger, 'DetachNetwork', async (call) => {
      const { who, dispatcher } = await leader(call);
      await dispatcher.detachNetwork(who.nodeId, call.request.sessionId, call.request.taskId);
      return {};
    }),
  };
}

function normaliseDescription(d: any) {
  return {
    hostname: d?.hostname ?? '',
    platform: { os: d?.platform?.os ?? '', arch: d?.platform?.arch ?? '' },
    resources: { nanoCpus: d?.resources?.nanoCpus ?? 0, memoryBytes: d?.resources?.memoryBytes ?? 0, generic: d?.resources?.generic ?? {} },
    engineLabels: d?.engineLabels ?? {},
  };
}
