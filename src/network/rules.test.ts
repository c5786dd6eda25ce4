/** The pure parts of the overlay driver: addresses, names, peer diffs, DNS records, nftables rulesets. */
import { describe, expect, it } from 'vitest';
import { macForIp, parseSubnet, subnetContains } from './addresses.js';
import { dnsRecordChanges, networkDnsRecords } from './dns-records.js';
import { daemonMeshRuleset, ingressSandboxRuleset, meshPorts } from './mesh-rules.js';
import { DriverNames, validatePrefix } from './names.js';
import { UNKNOWN_VTEP, peerChanges, remotePeers } from './peers.js';
import type { OverlayNetworkState } from './types.js';
import { taskVipRuleset } from './vip-rules.js';

const network = (over: Partial<OverlayNetworkState> = {}): OverlayNetworkState => ({
  id: 'n1', name: 'app', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', ingress: false,
  endpoints: [], services: [], ...over,
});

describe('addresses', () => {
  it('derives the MAC from the IP and tests subnet membership', () => {
    expect(macForIp('10.0.1.10')).toBe('02:42:0a:00:01:0a');
    expect(macForIp('192.168.255.1')).toBe('02:42:c0:a8:ff:01');
    const subnet = parseSubnet('10.0.1.77/24');
    expect(subnet.prefixLength).toBe(24);
    expect(subnetContains(subnet, '10.0.1.200')).toBe(true);
    expect(subnetContains(subnet, '10.0.2.1')).toBe(false);
    expect(() => parseSubnet('10.0.1.0/33')).toThrow(/CIDR/);
    expect(() => macForIp('10.0.1')).toThrow(/IPv4/);
  });
});

describe('names', () => {
  it('keeps interface names within 15 bytes and recognises only its own namespaces', () => {
    expect(() => validatePrefix('tsw-abcd')).toThrow(/1-7 characters/);
    expect(() => validatePrefix('Tsw')).toThrow();
    const names = new DriverNames('tsw-a1');
    expect(names.vxlanStaging(16_777_215).length).toBeLessThanOrEqual(15);
    expect(names.ingressLink().length).toBeLessThanOrEqual(15);
    expect(names.classify('tsw-a1-sb-4097')).toEqual({ kind: 'sandbox', vni: 4097 });
    expect(names.classify('tsw-a1-t-abc123def456')).toEqual({ kind: 'task', id: 'abc123def456' });
    expect(names.classify('tsw-a12-sb-4097')).toBeUndefined();
    expect(names.classify('tsw-a1-t-x-sb-1')).toBeUndefined();
  });
});

describe('peers', () => {
  it('programs remote endpoints only, and removes what moved away', () => {
    const desired = remotePeers(network({
      endpoints: [
        { ip: '10.0.1.10', vtep: '192.168.0.1' }, // local
        { ip: '10.0.1.11', vtep: '192.168.0.2' },
        { ip: '10.0.1.12', vtep: '192.168.0.3' },
      ],
    }), '192.168.0.1');
    expect([...desired]).toEqual([['10.0.1.11', '192.168.0.2'], ['10.0.1.12', '192.168.0.3']]);
    const programmed = new Map([['10.0.1.11', '192.168.0.2'], ['10.0.1.13', '192.168.0.2'], ['10.0.1.12', '192.168.0.2']]);
    const { neighbours, forwarding } = peerChanges(programmed, desired);
    expect(neighbours).toEqual([
      'neigh del 10.0.1.13 dev vx0',
      'neigh replace 10.0.1.12 lladdr 02:42:0a:00:01:0c dev vx0 nud permanent',
    ]);
    expect(forwarding).toEqual([
      'fdb del 02:42:0a:00:01:0d dev vx0 self',
      'fdb replace 02:42:0a:00:01:0c dev vx0 dst 192.168.0.3 self permanent',
    ]);
    expect(peerChanges(desired, desired)).toEqual({ neighbours: [], forwarding: [] });
    // Entries found after a restart are re-sent (their VTEP is unknown).
    expect(peerChanges(new Map([['10.0.1.11', UNKNOWN_VTEP]]), desired).forwarding).toHaveLength(2);
  });
});

describe('dns records', () => {
  it('answers the VIP for vip services, task IPs for dnsrr, tasks.NAME and task names', () => {
    const records = networkDnsRecords(network({
      services: [
        { name: 'web', mode: 'vip', vip: '10.0.1.100', tasks: [{ name: 'web.1.x', ip: '10.0.1.11' }, { name: 'web.2.y', ip: '10.0.1.10' }] },
        { name: 'db', mode: 'dnsrr', tasks: [{ name: 'db.1.z', ip: '10.0.1.20' }] },
      ],
    }));
    expect(Object.fromEntries(records)).toEqual({
      web: ['10.0.1.100'], 'tasks.web': ['10.0.1.10', '10.0.1.11'], 'web.1.x': ['10.0.1.11'], 'web.2.y': ['10.0.1.10'],
      db: ['10.0.1.20'], 'tasks.db': ['10.0.1.20'], 'db.1.z': ['10.0.1.20'],
    });
    const next = new Map(records);
    next.delete('db.1.z');
    next.set('web', ['10.0.1.101']);
    expect(dnsRecordChanges(records, next)).toEqual(['del db.1.z', 'set web 10.0.1.101']);
  });
});

describe('nftables rulesets', () => {
  it('balances each VIP over its tasks with numgen, refuses unserved VIPs, and needs no table without VIPs', () => {
    const ruleset = taskVipRuleset([network({
      services: [
        { name: 'web', mode: 'vip', vip: '10.0.1.100', tasks: [{ name: 'a', ip: '10.0.1.10' }, { name: 'b', ip: '10.0.1.11' }, { name: 'c', ip: '10.0.1.12' }] },
        { name: 'one', mode: 'vip', vip: '10.0.1.101', tasks: [{ name: 'd', ip: '10.0.1.13' }] },
        { name: 'none', mode: 'vip', vip: '10.0.1.102', tasks: [] },
        { name: 'rr', mode: 'dnsrr', tasks: [{ name: 'e', ip: '10.0.1.14' }] },
      ],
    })]);
    expect(ruleset).toContain('ip daddr 10.0.1.100 dnat to numgen inc mod 3 map { 0 : 10.0.1.10, 1 : 10.0.1.11, 2 : 10.0.1.12 }');
    expect(ruleset).toContain('ip daddr 10.0.1.101 dnat to 10.0.1.13');
    expect(ruleset).toContain('ip daddr 10.0.1.102 reject');
    expect(ruleset).not.toContain('10.0.1.14');
    expect(ruleset.startsWith('table ip tsswarm\ndelete table ip tsswarm\n')).toBe(true);
    expect(taskVipRuleset([network({ services: [{ name: 'rr', mode: 'dnsrr', tasks: [] }] })])).toBe('');
  });

  it('publishes ingress ports everywhere and host ports only where a task runs', () => {
    const published = [
      { protocol: 'tcp' as const, publishedPort: 8080, targetPort: 80, mode: 'ingress' as const, backends: ['10.255.0.5', '10.255.0.6'] },
      { protocol: 'udp' as const, publishedPort: 5353, targetPort: 53, mode: 'host' as const, backends: ['10.255.0.7'] },
      { protocol: 'tcp' as const, publishedPort: 9090, targetPort: 90, mode: 'host' as const, backends: ['10.255.0.5', '10.255.0.8'] },
    ];
    const ports = meshPorts(published, (ip) => ip === '10.255.0.5');
    expect(ports.map((p) => [p.publishedPort, p.backends])).toEqual([[8080, ['10.255.0.5', '10.255.0.6']], [9090, ['10.255.0.5']]]);
    const daemon = daemonMeshRuleset('tsw1', ports);
    expect(daemon).toContain('fib daddr type local tcp dport 8080 dnat to 169.254.77.2');
    expect(daemon).toContain('fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 9090 dnat to 169.254.77.2');
    const sandbox = ingressSandboxRuleset(ports, '10.255.0.2');
    expect(sandbox).toContain('iifname "ig0" tcp dport 8080 dnat ip to numgen inc mod 2 map { 0 : 10.255.0.5 . 80, 1 : 10.255.0.6 . 80 }');
    expect(sandbox).toContain('iifname "ig0" tcp dport 9090 dnat to 10.255.0.5:90');
    expect(sandbox).toContain('oifname "br0" ct status dnat snat to 10.255.0.2');
  });
});

describe('state validation', () => {
  it('refuses what would become a second command in a batch, with one line naming the field', async () => {
    const { validState, validAttachment } = await import('./state-schema.js');
    const good = { vtep: '192.168.0.1', networks: [network()], published: [] };
    expect(validState(good)).toEqual(good);
    expect(() => validState({ ...good, networks: [network({ services: [{ name: 'web\nclear', mode: 'vip', tasks: [] }] })] }))
      .toThrow('invalid network state: networks.0.services.0.name: not a DNS name');
    expect(() => validState({ ...good, networks: [network({ subnet: '10.0.1.0/24; x' })] })).toThrow(/networks\.0\.subnet: not an IPv4 CIDR/);
    expect(() => validState({ ...good, networks: [network(), network({ id: 'n2' })] })).toThrow(/share a VNI/);
    expect(() => validState({ ...good, networks: [network({ ingress: true })] })).toThrow(/nodeAddress/);
    expect(() => validAttachment('abc def', 'h', [{ networkId: 'n1', ip: '10.0.1.2' }])).toThrow(/^invalid task id/);
    expect(() => validAttachment('abc', 'h', [])).toThrow(/at least one network/);
    expect(() => validAttachment('abc', 'h', [{ networkId: 'n1', ip: '10.0.1.300' }])).toThrow('invalid attachments: 0.ip: not an IPv4 address');
  });
});

describe('fresh task ruleset', () => {
  it('only creates the table in a new namespace (no delete: it would wait for an RCU grace period)', () => {
    const nets = [network({ services: [{ name: 'web', mode: 'vip', vip: '10.0.1.100', tasks: [{ name: 'a', ip: '10.0.1.10' }] }] })];
    expect(taskVipRuleset(nets, true).startsWith('table ip tsswarm {')).toBe(true);
    expect(taskVipRuleset(nets, true)).not.toContain('delete');
    expect(taskVipRuleset(nets)).toContain('delete table ip tsswarm');
  });
});
