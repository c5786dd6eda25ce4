import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NetworkObject, NodeObject, ServiceObject, TaskObject } from '../../api/objects.js';
import { withServiceDefaults } from '../../api/service-spec.js';
import type { ServiceSpec } from '../../api/objects.js';
import { addressesInUse, AllocationError, chooseNetworkAddressing, NetworkAllocator } from './allocator.js';
import { IpamError, nextFreeSubnet, parseIp, parseSubnet } from './ipam.js';
import { nodeNetworkState } from '../dispatcher/network-view.js';

const meta = { version: 1, createdAt: '', updatedAt: '' };
const net = (id: string, subnet: string, gateway: string, vni: number, ingress = false): NetworkObject => ({
  id, meta, vni, spec: { name: id, driver: 'overlay', subnet, gateway, attachable: false, labels: {}, ingress },
});
const spec = (over: Partial<ServiceSpec['task']> = {}, ports: ServiceSpec['endpoint']['ports'] = []): ServiceSpec => {
  const s = withServiceDefaults({ name: 'web', task: { image: 'busybox' } }) as ServiceSpec;
  return { ...s, task: { ...s.task, ...over }, endpoint: { ...s.endpoint, ports } };
};
const service = (id: string, sp: ServiceSpec): ServiceObject => ({ id, meta, spec: sp, specVersion: 1, endpoint: { virtualIps: [], ports: sp.endpoint.ports } });
const task = (id: string, serviceId: string, nodeId: string, networks: TaskObject['networks'], state: TaskObject['status']['state'] = 'running'): TaskObject => ({
  id, meta, serviceId, serviceName: serviceId, slot: 1, nodeId, spec: spec().task, specVersion: 1, desiredState: 'running',
  status: { state, timestamp: '', message: '', error: '', exitCode: 0, containerId: '' }, networks,
});
const node = (id: string, addr: string, ingressAddress?: string): NodeObject => ({
  id, meta, spec: { role: 'worker', availability: 'active', labels: {} },
  description: { hostname: id, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1e9, generic: {} }, engineLabels: {} },
  status: { state: 'ready', message: '', addr }, ingressAddress,
});

describe('ipam', () => {
  it('refuses malformed subnets with the reason', () => {
    expect(() => parseSubnet('10.0.0.1/24')).toThrow(/host bits set/);
    expect(() => parseSubnet('10.0.0.0')).toThrow(IpamError);
    expect(() => parseSubnet('300.0.0.0/24')).toThrow(/not an IPv4 address/);
  });

  it('never hands out a subnet that overlaps one in use', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }), (thirds) => {
      const used = thirds.map((t) => parseSubnet(`10.0.${t}.0/24`));
      const pool = parseSubnet('10.0.0.0/16');
      const got = nextFreeSubnet(pool, 24, used);
      if (!got) return new Set(thirds).size === 256;
      return used.every((u) => u.base !== got.base);
    }));
  });
});

describe('network addressing', () => {
  it('takes the next free /24 and VNI, and refuses an overlapping subnet', () => {
    const existing = [net('ingress', '10.0.0.0/24', '10.0.0.1', 4096, true), net('a', '10.0.1.0/24', '10.0.1.1', 4097)];
    expect(chooseNetworkAddressing(existing, { subnet: '', gateway: '' })).toEqual({ subnet: '10.0.2.0/24', gateway: '10.0.2.1', vni: 4098 });
    expect(() => chooseNetworkAddressing(existing, { subnet: '10.0.0.0/16', gateway: '' })).toThrow(/overlaps network ingress/);
    expect(() => chooseNetworkAddressing(existing, { subnet: '10.9.0.0/24', gateway: '10.8.0.1' })).toThrow(/not a host address/);
  });
});

describe('task and VIP allocation', () => {
  it('gives distinct addresses to tasks, VIPs and nodes, and reports exhaustion', () => {
    const a = net('a', '10.0.1.0/29', '10.0.1.1', 4097); // 5 usable besides the gateway
    const svc = service('s1', spec({ networks: ['a'] }));
    const alloc = new NetworkAllocator();
    const view = { networks: [a], services: [svc], tasks: [] as TaskObject[], nodes: [] };
    const actions = alloc.pass(view);
    const withVip = (actions[0] as { object: ServiceObject }).object;
    expect(withVip.endpoint.virtualIps).toEqual([{ networkId: 'a', addr: '10.0.1.2' }]);
    const used = addressesInUse({ ...view, services: [withVip] });
    const ips = [0, 1, 2, 3].map(() => alloc.allocateTask(withVip, withVip.spec.task, [a], used)[0]!.addresses[0]);
    expect(new Set([...ips, '10.0.1.1', '10.0.1.2']).size).toBe(6);
    expect(() => alloc.allocateTask(withVip, withVip.spec.task, [a], used)).toThrow(AllocationError);
  });

  it('frees the address of a finished task', () => {
    const a = net('a', '10.0.1.0/24', '10.0.1.1', 4097);
    const used = addressesInUse({ networks: [a], services: [], nodes: [], tasks: [
      task('t1', 's', 'n1', [{ networkId: 'a', addresses: ['10.0.1.5'] }], 'running'),
      task('t2', 's', 'n1', [{ networkId: 'a', addresses: ['10.0.1.6'] }], 'failed'),
    ] });
    expect(used.get('a')!.has(parseIp('10.0.1.5'))).toBe(true);
    expect(used.get('a')!.has(parseIp('10.0.1.6'))).toBe(false);
  });

  it('assigns a dynamic published port and keeps it across passes', () => {
    const ingress = net('ing', '10.0.0.0/24', '10.0.0.1', 4096, true);
    const svc = service('s1', spec({}, [{ protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'ingress' }]));
    const alloc = new NetworkAllocator();
    const first = (alloc.pass({ networks: [ingress], services: [svc], tasks: [], nodes: [] })[0] as { object: ServiceObject }).object;
    expect(first.endpoint.ports[0]!.publishedPort).toBe(30000);
    expect(alloc.pass({ networks: [ingress], services: [first], tasks: [], nodes: [] })).toEqual([]);
  });
});

describe('node network state', () => {
  it('lists remote endpoints, DNS names and published backends for a node with a local task', () => {
    const ingress = net('ing', '10.0.0.0/24', '10.0.0.1', 4096, true);
    const a = net('a', '10.0.1.0/24', '10.0.1.1', 4097);
    const sp = spec({ networks: ['a'] }, [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }]);
    const svc: ServiceObject = { ...service('s1', { ...sp, name: 'web' }), endpoint: { virtualIps: [{ networkId: 'a', addr: '10.0.1.2' }], ports: sp.endpoint.ports } };
    const nodes = [node('n1', '10.231.0.1', '10.0.0.2'), node('n2', '10.231.0.2', '10.0.0.3'), node('n3', '10.231.0.3', '10.0.0.4')];
    const tasks = [
      task('t1', 's1', 'n1', [{ networkId: 'a', addresses: ['10.0.1.3'] }, { networkId: 'ing', addresses: ['10.0.0.5'] }]),
      task('t2', 's1', 'n2', [{ networkId: 'a', addresses: ['10.0.1.4'] }, { networkId: 'ing', addresses: ['10.0.0.6'] }], 'starting'),
    ];
    const src = { networks: [ingress, a], services: [svc], tasks, nodes };
    const s1 = nodeNetworkState('n1', src)!;
    expect(s1.vtep).toBe('10.231.0.1');
    const overlay = s1.networks.find((n) => n.id === 'a')!;
    expect(overlay.endpoints).toEqual([{ ip: '10.0.1.3', vtep: '10.231.0.1' }, { ip: '10.0.1.4', vtep: '10.231.0.2' }]);
    expect(overlay.services).toEqual([{ name: 'web', mode: 'vip', vip: '10.0.1.2', tasks: [{ name: 's1.1.t1', ip: '10.0.1.3' }] }]);
    expect(s1.published).toEqual([{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, mode: 'ingress', backends: ['10.0.0.5'] }]);
    // A node without tasks still joins the routing mesh, and knows every node's ingress address.
    const s3 = nodeNetworkState('n3', src)!;
    expect(s3.networks.map((n) => n.id)).toEqual(['ing']);
    expect(s3.networks[0]!.nodeAddress).toBe('10.0.0.4');
    expect(s3.networks[0]!.endpoints.map((e) => e.ip)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });
});

describe('backends', () => {
  it('leaves a task out of DNS and the routing mesh until its health check passes', () => {
    const ingress = net('ing', '10.0.0.0/24', '10.0.0.1', 4096, true);
    const a = net('a', '10.0.1.0/24', '10.0.1.1', 4097);
    const sp = spec({ networks: ['a'] }, [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }]);
    const svc: ServiceObject = { ...service('s1', { ...sp, name: 'web' }), endpoint: { virtualIps: [{ networkId: 'a', addr: '10.0.1.2' }], ports: sp.endpoint.ports } };
    const starting = task('t1', 's1', 'n1', [{ networkId: 'a', addresses: ['10.0.1.3'] }, { networkId: 'ing', addresses: ['10.0.0.5'] }]);
    starting.status.health = 'starting';
    const healthy = task('t2', 's1', 'n1', [{ networkId: 'a', addresses: ['10.0.1.4'] }, { networkId: 'ing', addresses: ['10.0.0.6'] }]);
    healthy.status.health = 'healthy';
    const s = nodeNetworkState('n1', { networks: [ingress, a], services: [svc], tasks: [starting, healthy], nodes: [node('n1', '10.231.0.1', '10.0.0.2')] })!;
    expect(s.networks.find((n) => n.id === 'a')!.services[0]!.tasks.map((t) => t.ip)).toEqual(['10.0.1.4']);
    expect(s.published[0]!.backends).toEqual(['10.0.0.6']);
    // Both keep their tunnels' peers: a starting task must already be reachable by its checks' peers.
    expect(s.networks.find((n) => n.id === 'a')!.endpoints.map((e) => e.ip)).toEqual(['10.0.1.3', '10.0.1.4']);
  });
});
