/**
 * The overlay network driver on the real kernel: three test hosts (namespaces on a fabric bridge), a
 * driver running inside each, containers as the namespaces attach() returns. Everything is named
 * tswt-nd-* (hosts) or tswt-nN-* (drivers) and removed in afterAll, even when a test fails.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestFabric, type DriverClient } from '../../testkit/network-hosts.js';
import type { NodeNetworkState, OverlayNetworkState, ServiceEndpointState, PublishedPortState } from '../../src/network/types.js';
import { nativeDir } from '../../src/engine/runtime/driver.js';

const HOSTS = 3;
const WWW = '/tmp/tswt-nd-www';

let fabric: TestFabric;
const drivers: DriverClient[] = [];

/** The cluster as the managers would describe it; each host gets its own view (vtep, nodeAddress). */
interface Cluster {
  tasks: { id: string; name: string; host: number; app: string; ingress?: string }[];
  services: { name: string; vip: string; ingressVip?: string; mode: 'vip' | 'dnsrr'; tasks: string[] }[];
  published: { port: number; target: number; service: string; mode: 'ingress' | 'host' }[];
}

const APP = { id: 'net-app', name: 'app', vni: 4301, subnet: '10.60.0.0/24', gateway: '10.60.0.1' };
const INGRESS = { id: 'net-ingress', name: 'ingress', vni: 4300, subnet: '10.255.0.0/16', gateway: '10.255.0.1' };
const nodeIngressAddress = (host: number) => `10.255.0.${host + 2}`;

function stateFor(host: number, cluster: Cluster): NodeNetworkState {
  const vtepOf = (h: number) => fabric.address(h);
  const serviceState = (s: Cluster['services'][number], ingress: boolean): ServiceEndpointState => ({
    name: s.name,
    mode: s.mode,
    vip: ingress ? s.ingressVip : s.vip,
    tasks: s.tasks.map((id) => cluster.tasks.find((t) => t.id === id)!).map((t) => ({ name: t.name, ip: ingress ? t.ingress! : t.app })),
  });
  const app: OverlayNetworkState = {
    ...APP, ingress: false,
    endpoints: cluster.tasks.map((t) => ({ ip: t.app, vtep: vtepOf(t.host) })),
    services: cluster.services.map((s) => serviceState(s, false)),
  };
  const networks = [app];
  const published: PublishedPortState[] = cluster.published.map((p) => {
    const service = cluster.services.find((s) => s.name === p.service)!;
    return {
      protocol: 'tcp', publishedPort: p.port, targetPort: p.target, mode: p.mode,
      backends: service.tasks.map((id) => cluster.tasks.find((t) => t.id === id)!.ingress!),
    };
  });
  if (published.length > 0) {
    networks.push({
      ...INGRESS, ingress: true, nodeAddress: nodeIngressAddress(host),
      endpoints: [
        ...Array.from({ length: HOSTS }, (_, h) => ({ ip: nodeIngressAddress(h), vtep: vtepOf(h) })),
        ...cluster.tasks.filter((t) => t.ingress).map((t) => ({ ip: t.ingress!, vtep: vtepOf(t.host) })),
      ],
      services: cluster.services.filter((s) => s.ingressVip).map((s) => serviceState(s, true)),
    });
  }
  return { vtep: vtepOf(host), networks, published };
}

async function applyAll(cluster: Cluster): Promise<void> {
  await Promise.all(drivers.map((d, h) => d.apply(stateFor(h, cluster))));
}

function taskNetns(host: number, id: string): string {
  return `${drivers[host]!.prefix}-t-${id.slice(0, 12)}`;
}

async function ping(fromNetns: string, ip: string, extra: string[] = []): Promise<boolean> {
  const r = await fabric.exec(fromNetns, ['busybox', 'ping', '-c', '1', '-W', '1', ...extra, ip]);
  return r.code === 0;
}

async function httpGet(fromNetns: string, url: string): Promise<string> {
  // (busybox 1.35's wget crashes with -T: the exec's own timeout bounds it.)
  const r = await fabric.exec(fromNetns, ['busybox', 'wget', '-q', '-O', '-', url], 3_000);
  if (r.code !== 0) throw new Error(`GET ${url} from ${fromNetns} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function serveName(netns: string, name: string): void {
  const dir = `${WWW}/${name}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/index.html`, `${name}\n`);
  fabric.background(netns, ['busybox', 'httpd', '-f', '-p', '80', '-h', dir]);
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const resolverPath = (() => {
  try { return `${nativeDir()}/tsswarm-resolver`; } catch { return ''; }
})();
/** Hosts 1 and 2 attach tasks with native tsswarm-netattach; host 3 keeps the `ip -batch` fallback. */
const netattachPath = (h: number) => {
  if (h === HOSTS - 1) return undefined;
  try { return `${nativeDir()}/tsswarm-netattach`; } catch { return undefined; }
};

beforeAll(async () => {
  fabric = await TestFabric.create('tswt-nd', HOSTS);
  for (let h = 0; h < HOSTS; h++) drivers.push(fabric.startDriver(h, `tswt-n${h + 1}`, {
    resolver: resolverPath,
    netattach: netattachPath(h),
    // Names outside the cluster go to the host namespace's own loopback, where nothing answers: a
    // test never reaches the machine's real resolvers.
    upstreams: ['127.0.0.1:53'],
  }));
}, 60_000);

afterAll(async () => {
  await fabric?.destroy();
  rmSync(WWW, { recursive: true, force: true });
  expect(fabric.leftovers()).toEqual([]);
}, 60_000);

describe('overlay network driver', () => {
  const cluster: Cluster = { tasks: [], services: [], published: [] };

  it('containers on two hosts ping each other across the VXLAN, at the overlay MTU', async () => {
    cluster.tasks.push({ id: 'aaaaaaaaaaaa0001', name: 'ping.1.aaaa', host: 0, app: '10.60.0.10' });
    cluster.tasks.push({ id: 'bbbbbbbbbbbb0002', name: 'ping.2.bbbb', host: 1, app: '10.60.0.11' });
    await applyAll(cluster);
    const a = await drivers[0]!.attach('aaaaaaaaaaaa0001', 'ping-a', [{ networkId: APP.id, ip: '10.60.0.10' }]);
    const b = await drivers[1]!.attach('bbbbbbbbbbbb0002', 'ping-b', [{ networkId: APP.id, ip: '10.60.0.11' }]);
    expect(a.resolvConf).toContain('nameserver 10.60.0.1');
    expect(a.hosts).toContain('10.60.0.10\tping-a');
    expect(await ping(a.netnsPath, '10.60.0.11')).toBe(true);
    expect(await ping(b.netnsPath, '10.60.0.10')).toBe(true);
    // Full-size frames cross unfragmented: MTU 1450 = 1500 - 50, ICMP payload 1450 - 28.
    const link = await fabric.exec(a.netnsPath, ['ip', '-j', 'link', 'show', 'eth0']);
    expect(JSON.parse(link.stdout)[0].mtu).toBe(1450);
    expect(JSON.parse(link.stdout)[0].address).toBe('02:42:0a:3c:00:0a');
    expect(await ping(a.netnsPath, '10.60.0.11', ['-s', '1422'])).toBe(true);
    // A host without the network's tasks has no sandbox for it.
    expect(fabric.leftovers().filter((n) => n.startsWith('tswt-n3-'))).toEqual([]);
  });

  it('after an endpoint moves, the old IP stops answering, the new one works, and no stale neighbour is left', async () => {
    await drivers[1]!.detach('bbbbbbbbbbbb0002');
    cluster.tasks = cluster.tasks.filter((t) => t.id !== 'bbbbbbbbbbbb0002');
    cluster.tasks.push({ id: 'cccccccccccc0003', name: 'ping.2.cccc', host: 2, app: '10.60.0.12' });
    await applyAll(cluster);
    const c = await drivers[2]!.attach('cccccccccccc0003', 'ping-c', [{ networkId: APP.id, ip: '10.60.0.12' }]);
    const a = `/run/netns/${taskNetns(0, 'aaaaaaaaaaaa0001')}`;
    expect(await ping(a, '10.60.0.12')).toBe(true);
    expect(await ping(c.netnsPath, '10.60.0.10')).toBe(true);
    expect(await ping(a, '10.60.0.11')).toBe(false);
    const sandbox = `tswt-n1-sb-${APP.vni}`;
    const neigh = await fabric.exec(sandbox, ['ip', 'neigh', 'show', 'dev', 'vx0']);
    expect(neigh.stdout).toContain('10.60.0.12');
    expect(neigh.stdout).not.toContain('10.60.0.11 ');
    const fdb = await fabric.exec(sandbox, ['bridge', 'fdb', 'show', 'dev', 'vx0']);
    // The tunnel's own entries (`self`, with a dst); the bridge's learned ones age out by themselves.
    const tunnel = fdb.stdout.split('\n').filter((l) => l.includes(' dst '));
    expect(tunnel.some((l) => l.startsWith('02:42:0a:3c:00:0c dst 10.231.0.3'))).toBe(true);
    expect(tunnel.some((l) => l.includes('02:42:0a:3c:00:0b'))).toBe(false);
    expect(tunnel.some((l) => l.startsWith('00:00:00:00:00:00'))).toBe(false);
    // Host 2 has no task on the network any more: its sandbox is gone.
    expect(fabric.leftovers().filter((n) => n.startsWith('tswt-n2-'))).toEqual([]);
  });

  it('connections to a VIP spread evenly over the service\'s three tasks on three hosts', async () => {
    const web = [
      { id: 'dddddddddddd0001', name: 'web.1.dddd', host: 0, app: '10.60.0.21', ingress: '10.255.1.21' },
      { id: 'dddddddddddd0002', name: 'web.2.dddd', host: 1, app: '10.60.0.22', ingress: '10.255.1.22' },
      { id: 'dddddddddddd0003', name: 'web.3.dddd', host: 2, app: '10.60.0.23', ingress: '10.255.1.23' },
    ];
    cluster.tasks.push(...web);
    cluster.services.push({ name: 'web', vip: '10.60.0.100', ingressVip: '10.255.0.100', mode: 'vip', tasks: web.map((t) => t.id) });
    await applyAll(cluster);
    for (const t of web) {
      const sandbox = await drivers[t.host]!.attach(t.id, t.name, [{ networkId: APP.id, ip: t.app }]);
      serveName(sandbox.netnsPath, t.name);
    }
    const client = `/run/netns/${taskNetns(0, 'aaaaaaaaaaaa0001')}`;
    for (const t of web) await waitFor(`httpd of ${t.name}`, async () => (await httpGet(client, `http://${t.app}/`).catch(() => '')) === t.name);
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const who = await httpGet(client, 'http://10.60.0.100/');
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(web.map((t) => t.name));
    expect(Math.max(...counts.values()) - Math.min(...counts.values())).toBeLessThanOrEqual(1);
    // The client's table was rewritten when the service appeared (it attached before).
    const rules = await fabric.exec(client, ['nft', 'list', 'table', 'ip', 'tsswarm']);
    expect(rules.stdout).toContain('numgen inc mod 3');
  });

  it('a scaled-down service stops receiving VIP traffic on the removed task', async () => {
    const service = cluster.services.find((s) => s.name === 'web')!;
    const removed = service.tasks.pop()!;
    await applyAll(cluster);
    const client = `/run/netns/${taskNetns(0, 'aaaaaaaaaaaa0001')}`;
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add(await httpGet(client, 'http://10.60.0.100/'));
    expect([...seen].sort()).toEqual(['web.1.dddd', 'web.2.dddd']);
    service.tasks.push(removed);
    await applyAll(cluster);
  });

  it('a published port answers on every host, including one without a task, and reaches every task', async () => {
    // The web tasks join the ingress network too (a second interface).
    const web = cluster.tasks.filter((t) => t.name.startsWith('web.'));
    cluster.published.push({ port: 8080, target: 80, service: 'web', mode: 'ingress' });
    // Remove the third task from the service so host 3 has no backend.
    const service = cluster.services.find((s) => s.name === 'web')!;
    service.tasks = service.tasks.filter((id) => id !== 'dddddddddddd0003');
    await applyAll(cluster);
    for (const t of web.filter((t) => t.host !== 2)) {
      await drivers[t.host]!.detach(t.id);
      const sandbox = await drivers[t.host]!.attach(t.id, t.name, [{ networkId: APP.id, ip: t.app }, { networkId: INGRESS.id, ip: t.ingress! }]);
      serveName(sandbox.netnsPath, t.name);
    }
    await applyAll(cluster);
    for (let target = 0; target < HOSTS; target++) {
      const url = `http://${fabric.address(target)}:8080/`;
      const from = fabric.host((target + 1) % HOSTS); // through another host: prerouting
      await waitFor(`published port on host ${target + 1}`, async () => (await httpGet(from, url).catch(() => '')).startsWith('web.'));
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add(await httpGet(from, url));
      expect([...seen].sort()).toEqual(['web.1.dddd', 'web.2.dddd']);
      // From the host itself (output hook), e.g. host 3 which runs no task of the service.
      expect(await httpGet(fabric.host(target), url)).toMatch(/^web\.[12]\.dddd$/);
    }
  });

  it('a mode=host port answers only on hosts running a task, and only with their own task', async () => {
    cluster.published.push({ port: 9090, target: 80, service: 'web', mode: 'host' });
    await applyAll(cluster);
    for (let i = 0; i < 4; i++) expect(await httpGet(fabric.host(2), `http://${fabric.address(0)}:9090/`)).toBe('web.1.dddd');
    for (let i = 0; i < 4; i++) expect(await httpGet(fabric.host(2), `http://${fabric.address(1)}:9090/`)).toBe('web.2.dddd');
    await expect(httpGet(fabric.host(0), `http://${fabric.address(2)}:9090/`)).rejects.toThrow(/failed/);
    const rules = await fabric.exec(fabric.host(2), ['nft', 'list', 'table', 'ip', 'tswt-n3']);
    expect(rules.stdout).toContain('dport 8080');
    expect(rules.stdout).not.toContain('dport 9090');
    cluster.published = cluster.published.filter((p) => p.port !== 9090);
    await applyAll(cluster);
  });

  it.skipIf(!existsSync(resolverPath))('service discovery: names resolve to the VIP, tasks.NAME and task names to task IPs', async () => {
    const client = `/run/netns/${taskNetns(0, 'aaaaaaaaaaaa0001')}`;
    const lookup = async (name: string) => (await fabric.exec(client, ['busybox', 'nslookup', name, APP.gateway])).stdout;
    expect(await lookup('web')).toContain('10.60.0.100');
    const tasks = await lookup('tasks.web');
    expect(tasks).toContain('10.60.0.21');
    expect(tasks).toContain('10.60.0.22');
    expect(await lookup('web.1.dddd')).toContain('10.60.0.21');
  });

  it('a restarted driver adopts what its predecessor made: traffic goes on, and changes apply to adopted peers and tasks', async () => {
    await drivers[0]!.kill();
    drivers[0] = fabric.startDriver(0, 'tswt-n1', { resolver: resolverPath, netattach: netattachPath(0), upstreams: ['127.0.0.1:53'] });
    const client = `/run/netns/${taskNetns(0, 'aaaaaaaaaaaa0001')}`;
    expect(await ping(client, '10.60.0.12')).toBe(true); // the kernel kept it all
    await drivers[0]!.apply(stateFor(0, cluster));
    expect(await ping(client, '10.60.0.12')).toBe(true);
    expect(await httpGet(client, 'http://10.60.0.100/')).toMatch(/^web\.[12]\.dddd$/);
    expect(await httpGet(fabric.host(1), `http://${fabric.address(0)}:8080/`)).toMatch(/^web\.[12]\.dddd$/);
    // The agent attaching a running task again gets the same namespace back, untouched.
    const again = await drivers[0]!.attach('aaaaaaaaaaaa0001', 'ping-a', [{ networkId: APP.id, ip: '10.60.0.10' }]);
    expect(again.netnsPath).toBe(client);
    expect(await ping(client, '10.60.0.12')).toBe(true);
    // The ping task on host 3 goes away: the adopted neighbour table loses it.
    await drivers[2]!.detach('cccccccccccc0003');
    cluster.tasks = cluster.tasks.filter((t) => t.id !== 'cccccccccccc0003');
    // And the ports are unpublished: the adopted ingress sandbox and the mesh table go.
    cluster.published = [];
    await applyAll(cluster);
    expect(await ping(client, '10.60.0.12')).toBe(false);
    const neigh = await fabric.exec(`tswt-n1-sb-${APP.vni}`, ['ip', 'neigh', 'show', 'dev', 'vx0']);
    expect(neigh.stdout).not.toContain('10.60.0.12 ');
    expect(fabric.leftovers()).not.toContain(`tswt-n1-sb-${INGRESS.vni}`);
    expect((await fabric.exec(fabric.host(0), ['nft', 'list', 'tables'])).stdout.trim()).toBe('');
    // DNS is served again by the new driver's resolver.
    if (existsSync(resolverPath)) {
      expect((await fabric.exec(client, ['busybox', 'nslookup', 'web', APP.gateway])).stdout).toContain('10.60.0.100');
    }
  });

  it('apply(empty state) and detach leave no sandbox, link or nftables table behind; close() removes the rest', async () => {
    for (const t of cluster.tasks) await drivers[t.host]!.detach(t.id);
    await Promise.all(drivers.map((d, h) => d.apply({ vtep: fabric.address(h), networks: [], published: [] })));
    expect(fabric.leftovers().filter((n) => /^tswt-n\d-/.test(n))).toEqual([]);
    for (let h = 0; h < HOSTS; h++) {
      const links = await fabric.exec(fabric.host(h), ['ip', '-o', 'link', 'show']);
      expect(links.stdout.split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0])).toEqual(['lo', 'u0']);
      const tables = await fabric.exec(fabric.host(h), ['nft', 'list', 'tables']);
      expect(tables.stdout.trim()).toBe('');
    }
    // close() after a fresh attach removes that too.
    await drivers[0]!.apply(stateFor(0, cluster));
    await drivers[0]!.attach('eeeeeeeeeeee0001', 'late', [{ networkId: APP.id, ip: '10.60.0.30' }]);
    await drivers[0]!.close();
    expect(fabric.leftovers().filter((n) => n.startsWith('tswt-n1-'))).toEqual([]);
    const tables = await fabric.exec(fabric.host(0), ['nft', 'list', 'tables']);
    expect(tables.stdout.trim()).toBe('');
  });
});
