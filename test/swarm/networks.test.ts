/**
 * The manager's side of overlay networks on real daemons: the network API and its refusals, and the
 * allocator's addresses for services, tasks and nodes. These daemons run in the machine's own network
 * namespace with `--network-driver none`, so their tasks are refused rather than wired: the data path
 * is tested on test hosts in network namespaces (test/network, cluster-test).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxTarball, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const IMAGE = 'demo/busybox:latest';
const BASE_PORT = 26000 + (process.pid % 500) * 4;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;
const daemons: TestDaemon[] = [];
let manager: TestDaemon;
let scratch: string;

const inSubnet = (ip: string, prefix: string) => ip.startsWith(prefix);

beforeAll(async () => {
  scratch = tempDir('networks');
  const tarball = await busyboxTarball(scratch);
  for (let i = 0; i < 2; i++) {
    const d = new TestDaemon(`net${i}`, 'tsswarm', ['--listen-addr', addr(i), '--hostname', `nethost${i}`]);
    daemons.push(d);
    await d.start();
    await d.ok(['image', 'import', tarball, IMAGE]);
  }
  manager = daemons[0]!;
  await manager.ok(['swarm', 'init', '--advertise-addr', addr(0), '--dispatcher-heartbeat', '500ms']);
  const token = (await manager.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
  await daemons[1]!.ok(['swarm', 'join', '--token', token, '--listen-addr', addr(1), addr(0)]);
}, 120_000);

afterAll(async () => {
  for (const d of daemons) await d.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

describe('overlay networks on the managers', () => {
  it('has an ingress network from swarm init, and gives every node an address on it', async () => {
    const networks = JSON.parse(await manager.ok(['network', 'ls', '--format', 'json']));
    const ingress = networks.find((n: any) => n.spec.name === 'ingress');
    expect(ingress.spec.ingress).toBe(true);
    expect(ingress.spec.subnet).toBe('10.0.0.0/24');
    const nodes = await waitFor('ingress addresses for both nodes', async () => {
      const ns = JSON.parse(await manager.ok(['node', 'ls', '--format', 'json']));
      return ns.length === 2 && ns.every((n: any) => n.ingressAddress) ? ns : undefined;
    }, 20_000);
    const addrs = nodes.map((n: any) => n.ingressAddress);
    expect(new Set(addrs).size).toBe(2);
    for (const a of addrs) expect(inSubnet(a, '10.0.0.')).toBe(true);
  });

  it('creates networks with the next free subnet or the one asked for, and refuses clashes in one line', async () => {
    await manager.ok(['network', 'create', '--driver', 'overlay', 'auto1']);
    await manager.ok(['network', 'create', '--subnet', '10.20.0.0/24', '--gateway', '10.20.0.254', 'backend']);
    const auto1 = JSON.parse(await manager.ok(['network', 'inspect', 'auto1']))[0];
    expect(auto1.spec.subnet).toBe('10.0.1.0/24');
    expect(auto1.spec.gateway).toBe('10.0.1.1');
    const backend = JSON.parse(await manager.ok(['network', 'inspect', 'backend']))[0];
    expect(backend.spec.gateway).toBe('10.20.0.254');
    expect(backend.vni).not.toBe(auto1.vni);

    for (const [args, why] of [
      [['network', 'create', 'backend'], /network name "backend" is already in use/],
      [['network', 'create', '--subnet', '10.20.0.128/25', 'clash'], /overlaps network backend/],
      [['network', 'create', '--subnet', '10.30.0.1/24', 'bad'], /host bits set/],
      [['network', 'create', '--subnet', '10.30.0.0/24', '--gateway', '10.31.0.1', 'bad'], /not a host address/],
      [['network', 'rm', 'nosuch'], /network nosuch not found/],
    ] as const) {
      const r = await manager.cli([...args]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(why);
    }
  });

  it('gives a service a VIP and its tasks addresses, and refuses to remove a network in use', async () => {
    const r = await manager.cli(['service', 'create', '-d', '--name', 'api', '--replicas', '2', '--network', 'backend',
      '--publish', '8080:80', IMAGE, 'sleep', '600']);
    expect(r.code, r.stderr).toBe(0);
    const svc = await waitFor('a VIP for api', async () => {
      const s = JSON.parse(await manager.ok(['service', 'inspect', 'api']))[0];
      return s.endpoint.virtualIps.length === 1 ? s : undefined;
    }, 20_000);
    const vip = svc.endpoint.virtualIps[0].addr as string;
    expect(inSubnet(vip, '10.20.0.')).toBe(true);
    expect(svc.spec.task.networks).toEqual([JSON.parse(await manager.ok(['network', 'inspect', 'backend']))[0].id]);

    // These daemons have no network driver: the tasks are refused with the reason, after allocation.
    const tasks = await waitFor('both tasks refused by their nodes', async () => {
      const ts = JSON.parse(await manager.ok(['service', 'ps', '--format', 'json', 'api']));
      return ts.length >= 2 && ts.every((t: any) => t.networks.length === 2) && ts.some((t: any) => t.status.state === 'rejected') ? ts : undefined;
    }, 30_000);
    const rejected = tasks.find((t: any) => t.status.state === 'rejected');
    expect(rejected.status.error).toMatch(/cannot join overlay networks/);
    const onBackend = tasks.map((t: any) => t.networks[0].addresses[0]);
    for (const ip of onBackend) expect(inSubnet(ip, '10.20.0.') && ip !== vip && ip !== '10.20.0.254').toBe(true);
    expect(tasks.every((t: any) => inSubnet(t.networks[1].addresses[0], '10.0.0.'))).toBe(true);

    const taken = await manager.cli(['service', 'create', '-d', '--name', 'other', '-p', '8080:81', IMAGE, 'sleep', '1']);
    expect(taken.stderr).toMatch(/port 8080\/tcp is already published by service api/);
    const attachIngress = await manager.cli(['service', 'create', '-d', '--name', 'other', '--network', 'ingress', IMAGE, 'sleep', '1']);
    expect(attachIngress.stderr).toMatch(/routing mesh/);
    const inUse = await manager.cli(['network', 'rm', 'backend']);
    expect(inUse.code).not.toBe(0);
    expect(inUse.stderr).toMatch(/network backend is in use by service api/);
    expect((await manager.cli(['network', 'rm', 'ingress'])).stderr).toMatch(/in use by service api/);

    await manager.ok(['service', 'rm', 'api']);
    await waitFor('backend removable', async () => ((await manager.cli(['network', 'rm', 'backend'])).code === 0 ? true : undefined), 30_000);
    const left = JSON.parse(await manager.ok(['network', 'ls', '--format', 'json'])).map((n: any) => n.spec.name).sort();
    expect(left).toEqual(['auto1', 'ingress']);
  });
});
