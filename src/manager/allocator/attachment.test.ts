import { describe, expect, it } from 'vitest';
import type { NetworkObject, NodeObject } from '../../api/objects.js';
import { attachableNetwork, attachmentTask, existingAttachment } from './attachment.js';
import { networkEndpoints } from './network-endpoints.js';
import { nodeNetworkState } from '../dispatcher/network-view.js';

const meta = { version: 1, createdAt: '', updatedAt: '' };
const net = (id: string, name: string, attachable: boolean, ingress = false): NetworkObject => ({
  id, meta, vni: 4097, spec: { name, driver: 'overlay', subnet: '10.0.1.0/24', gateway: '10.0.1.1', attachable, labels: {}, ingress },
});
const node = (id: string, addr: string): NodeObject => ({
  id, meta, spec: { role: 'worker', availability: 'active', labels: {} },
  description: { hostname: id, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1e9, generic: {} }, engineLabels: {} },
  status: { state: 'ready', message: '', addr },
});
const networks = [net('aaa111', 'open', true), net('bbb222', 'closed', false), net('ccc333', 'ingress', true, true)];
const cid = 'f'.repeat(64);
const req = (network: string, over: object = {}) => ({ network, containerId: cid, containerName: 'solo', ...over });

describe('network attachments of standalone containers', () => {
  it('finds a network by id, name or unique id prefix', () => {
    expect(attachableNetwork(networks, req('open')).id).toBe('aaa111');
    expect(attachableNetwork(networks, req('aaa')).spec.name).toBe('open');
    expect(attachableNetwork(networks, req('aaa111')).spec.name).toBe('open');
    expect(() => attachableNetwork(networks, req('bbb222'))).toThrow('network closed is not manually attachable');
    expect(() => attachableNetwork(networks, req('ccc'))).toThrow(/network ingress is the routing mesh's/);
    expect(() => attachableNetwork(networks, req('zz'))).toThrow('network zz not found');
  });

  it.each([
    [req('nosuch'), /network nosuch not found/],
    [req('closed'), /network closed is not manually attachable: create it with --attachable/],
    [req('ingress'), /routing mesh/],
    [req('open', { containerId: 'not-hex' }), /invalid container id/],
    [req('open', { containerName: '-bad' }), /invalid container name/],
  ])('refuses %j with the reason', (r, why) => {
    expect(() => attachableNetwork(networks, r)).toThrow(why);
  });

  it('makes a task fixed to the node that joins only that network, and finds it again for a retry', () => {
    const t = attachmentTask('t1', 'n1', networks[0]!, req('open'), '2026-11-24T00:00:00.000Z');
    expect(t).toMatchObject({ serviceId: '', nodeId: 'n1', desiredState: 'running', attachment: { containerId: cid, containerName: 'solo' } });
    expect(t.spec.networks).toEqual(['aaa111']);
    expect(existingAttachment([t], 'aaa111', cid)).toBe(t);
    expect(existingAttachment([t], 'bbb222', cid)).toBeUndefined();
    expect(existingAttachment([{ ...t, status: { ...t.status, state: 'shutdown' } }], 'aaa111', cid)).toBeUndefined();
  });

  it('makes the container an endpoint everywhere and its name resolvable, once it has an address', () => {
    const t = { ...attachmentTask('t1', 'n1', networks[0]!, req('open'), ''), networks: [{ networkId: 'aaa111', addresses: ['10.0.1.7'] }] };
    const nodes = [node('n1', '192.168.0.1:2377'), node('n2', '192.168.0.2:2377')];
    const unplaced = nodeNetworkState('n1', { networks, services: [], tasks: [t], nodes })!;
    expect(unplaced.networks).toEqual([]);
    const assigned = { ...t, status: { ...t.status, state: 'assigned' as const } };
    const view = nodeNetworkState('n1', { networks, services: [], tasks: [assigned], nodes })!;
    expect(view.networks).toHaveLength(1);
    expect(view.networks[0]!.endpoints).toEqual([{ ip: '10.0.1.7', vtep: '192.168.0.1' }]);
    expect(view.networks[0]!.services).toEqual([{ name: 'solo', mode: 'dnsrr', vip: '', tasks: [{ name: 'solo', ip: '10.0.1.7' }] }]);
    // Another node learns of the network only with a task of its own on it.
    expect(nodeNetworkState('n2', { networks, services: [], tasks: [assigned], nodes })!.networks).toEqual([]);
  });

  it('network inspect lists the VIPs, then the tasks and containers that hold an address, with their nodes', () => {
    const nodes = [node('n1', '192.168.0.1:2377')];
    const t = { ...attachmentTask('t1', 'n1', networks[0]!, req('open'), ''), networks: [{ networkId: 'aaa111', addresses: ['10.0.1.7'] }] };
    const assigned = { ...t, status: { ...t.status, state: 'assigned' as const } };
    const finished = { ...assigned, id: 't2', status: { ...assigned.status, state: 'shutdown' as const } };
    const service = { id: 's1', spec: { name: 'web' }, endpoint: { virtualIps: [{ networkId: 'aaa111', addr: '10.0.1.2/24' }], ports: [] } } as never;
    expect(networkEndpoints(networks[0]!, { services: [service], tasks: [assigned, finished], nodes })).toEqual([
      { kind: 'vip', name: 'web', address: '10.0.1.2', node: '', id: 's1' },
      { kind: 'container', name: 'solo', address: '10.0.1.7', node: 'n1', id: 't1' },
    ]);
    expect(networkEndpoints(networks[1]!, { services: [service], tasks: [assigned], nodes })).toEqual([]);
  });
});
