import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../rpc/proto.js';
import type { NetworkObject, NodeObject, ServiceObject, ServiceSpec, TaskObject } from './objects.js';

// The data model is written once in TypeScript (objects.ts) and once as the wire's messages
// (proto/objects.proto): every field set here must come back from an encode and decode unchanged
// (the wire may add defaults of its own, e.g. the generic resources of a reservation).
const root = protobuf.loadSync(join(PROTO_DIR, 'objects.proto'));
const AS_LOADED = { longs: Number, enums: String, defaults: true, arrays: true, objects: true, oneofs: false };

function roundTrip(typeName: string, value: object): unknown {
  const type = root.lookupType(`tsswarm.swarm.v1.${typeName}`);
  return type.toObject(type.decode(type.encode(type.fromObject(value)).finish()), AS_LOADED);
}

const meta = { version: 7, createdAt: '2026-12-07T10:00:00.000Z', updatedAt: '2026-12-07T10:00:01.000Z' };

const taskSpec: ServiceSpec['task'] = {
  image: 'registry.local:5000/shop/web:1.4', command: ['/bin/web'], args: ['-p', '80'], env: ['A=1'], workingDir: '/srv', user: '1000:1000',
  hostname: 'web', mounts: [{ source: '/data', target: '/data', readOnly: true }],
  resources: { reservations: { nanoCpus: 500_000_000, memoryBytes: 64 << 20 }, limits: { nanoCpus: 1_000_000_000, memoryBytes: 128 << 20, pids: 64 } },
  restartPolicy: { condition: 'on-failure', delayMs: 5000, maxAttempts: 3, windowMs: 60_000 },
  placement: { constraints: ['node.labels.zone==a'], preferences: [{ spread: 'node.labels.rack' }], maxReplicasPerNode: 2 },
  stopGracePeriodMs: 10_000, stopSignal: 'SIGTERM',
  healthcheck: { test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 500, retries: 3, startPeriodMs: 2000 },
  networks: ['n1'], forceUpdate: 2,
};
const update = { parallelism: 2, delayMs: 1000, failureAction: 'rollback' as const, monitorMs: 5000, maxFailureRatio: 0.25, order: 'start-first' as const };
const serviceSpec: ServiceSpec = {
  name: 'web', labels: { tier: 'front' }, task: taskSpec, mode: { replicated: { replicas: 3 } }, update, rollback: { ...update, order: 'stop-first' },
  endpoint: { mode: 'vip', ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }] },
};

describe('the data model on the wire (proto/objects.proto)', () => {
  it('carries a service with every field set unchanged', () => {
    const service: ServiceObject = {
      id: 's1', meta, spec: serviceSpec, specVersion: 4, previousSpec: { ...serviceSpec, labels: {} },
      endpoint: { virtualIps: [{ networkId: 'n1', addr: '10.0.1.2/24' }], ports: serviceSpec.endpoint.ports },
      updateStatus: { state: 'updating', message: 'update in progress', startedAt: meta.createdAt, completedAt: '', failures: 1, nextBatchAt: meta.updatedAt },
      rebalanceRequestedAt: meta.updatedAt,
    };
    expect(roundTrip('Service', service)).toMatchObject(service);
  });

  it('carries a task and a network attachment unchanged', () => {
    const task: TaskObject = {
      id: 't1', meta, serviceId: 's1', serviceName: 'web', slot: 2, nodeId: 'n9', spec: taskSpec, specVersion: 4, desiredState: 'running',
      status: { state: 'running', timestamp: meta.updatedAt, message: 'started', error: '', exitCode: 0, containerId: 'c1', health: 'healthy', startedAt: meta.createdAt },
      networks: [{ networkId: 'n1', addresses: ['10.0.1.5/24'] }], restarts: [meta.createdAt],
      attachment: { containerId: 'c2', containerName: 'probe' },
    };
    expect(roundTrip('Task', task)).toMatchObject(task);
  });

  it('carries a node and a network unchanged', () => {
    const node: NodeObject = {
      id: 'n9', meta, spec: { role: 'manager', availability: 'drain', labels: { zone: 'a' } },
      description: { hostname: 'h1', platform: { os: 'linux', arch: 'amd64' }, resources: { nanoCpus: 2e9, memoryBytes: 2 ** 34, generic: { gpu: 1 } }, engineLabels: { disk: 'ssd' } },
      status: { state: 'ready', message: '', addr: '10.0.0.9' },
      managerStatus: { raftId: 12, addr: '10.0.0.9:2377', reachability: 'reachable', leader: true },
      advertiseAddr: '10.0.0.9:2377', ingressAddress: '10.0.0.3',
    };
    expect(roundTrip('Node', node)).toMatchObject(node);
    const network: NetworkObject = {
      id: 'n1', meta, vni: 4097, spec: { name: 'backend', driver: 'overlay', subnet: '10.0.1.0/24', gateway: '10.0.1.1', attachable: true, labels: { a: 'b' }, ingress: false },
    };
    expect(roundTrip('Network', network)).toMatchObject(network);
  });
});
