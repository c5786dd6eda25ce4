/**
 * Overlay networks end to end on a real swarm: four test hosts (network namespaces on a fabric, one
 * daemon each, see cluster-test/harness.ts), a drained manager and three workers. A web service with
 * three replicas on an overlay, published on port 8080; a client service on the same overlay. The
 * containers reach each other across hosts by IP and by name, the VIP spreads connections, the
 * routing mesh answers on every host, and removing everything leaves nothing behind.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, IMAGE, type Cluster, type Host } from '../../cluster-test/harness.js';

let cluster: Cluster;
let manager: Host;
const nodeNames = new Map<string, string>();

function sh(file: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const listNetns = async () => (await sh('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);

interface TaskView { id: string; nodeId: string; slot: number; status: { state: string; containerId: string }; networks: { networkId: string; addresses: string[] }[] }

async function runningTasks(service: string): Promise<TaskView[]> {
  const ts = await manager.json<TaskView[]>(['service', 'ps', '-f', 'desired-state=running', service]);
  return ts.filter((t) => t.status.state === 'running');
}

/** Runs a command in the container of `task`, through the daemon of the host it runs on. */
async function execIn(task: TaskView, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const host = cluster.host(nodeNames.get(task.nodeId)!);
  return host.cli(['container', 'exec', task.status.containerId, ...cmd], 30_000);
}

/** An HTTP GET from inside a test host's namespace (not from any container). */
function getFromHost(from: Host, url: string) {
  return sh('nsenter', [`--net=/run/netns/${from.netns}`, '--', 'curl', '-sS', '-m', '3', url]);
}

/** A shell loop of HTTP GETs inside a container (busybox nc: Debian's static busybox wget crashes). */
const httpGets = (host: string, n: number) => ['sh', '-c', `for i in $(seq ${n}); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 80 | tail -n 1; done`];

beforeAll(async () => {
  cluster = await createCluster({ hosts: 4, managers: 1, heartbeat: '1s' });
  manager = cluster.managers()[0]!;
  const nodes = await manager.json<{ id: string; description: { hostname: string } }[]>(['node', 'ls']);
  for (const n of nodes) nodeNames.set(n.id, n.description.hostname);
  await manager.ok(['node', 'update', '--availability', 'drain', manager.name]);
  await manager.ok(['network', 'create', '--driver', 'overlay', 'appnet']);
  // Each replica serves its own hostname, so the answers tell which replica served them.
  await manager.ok(['service', 'create', '--name', 'web', '--replicas', '3', '--max-replicas-per-node', '1', '--network', 'appnet',
    '--publish', '8080:80', IMAGE, 'sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'], 120_000);
  await manager.ok(['service', 'create', '--name', 'client', '--network', 'appnet', IMAGE, 'sleep', '3600'], 120_000);
}, 300_000);

afterAll(async () => {
  await cluster?.destroy();
}, 120_000);

describe('overlay networks on a swarm of test hosts', () => {
  it('lets containers on different hosts reach each other by IP and by service and task name', async () => {
    const [client] = await runningTasks('client');
    const web = await runningTasks('web');
    expect(web).toHaveLength(3);
    expect(new Set(web.map((t) => t.nodeId)).size).toBe(3);
    const remote = web.find((t) => t.nodeId !== client!.nodeId)!;
    const remoteIp = remote.networks[0]!.addresses[0]!;
    const ping = await execIn(client!, ['ping', '-c', '1', '-W', '3', remoteIp]);
    expect(ping.code, ping.stderr + ping.stdout).toBe(0);

    const byName = await execIn(client!, ['ping', '-c', '1', '-W', '3', `web.${remote.slot}.${remote.id}`]);
    expect(byName.code, byName.stderr + byName.stdout).toBe(0);
    expect(byName.stdout).toContain(remoteIp);

    const all = await execIn(client!, ['nslookup', 'tasks.web']);
    for (const t of web) expect(all.stdout).toContain(t.networks[0]!.addresses[0]!);
    const service = JSON.parse(await manager.ok(['service', 'inspect', 'web']))[0] as { endpoint: { virtualIps: { addr: string }[] } };
    const vip = await execIn(client!, ['nslookup', 'web']);
    expect(vip.stdout).toContain(service.endpoint.virtualIps[0]!.addr);
  });

  it('spreads connections to the VIP over all three replicas', async () => {
    const [client] = await runningTasks('client');
    const r = await execIn(client!, httpGets('web', 30));
    expect(r.code, r.stderr).toBe(0);
    const answers = r.stdout.trim().split('\n');
    expect(answers).toHaveLength(30);
    const counts = new Map<string, number>();
    for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
    expect(counts.size).toBe(3);
  });

  it('answers the published port on every host, including the one without a replica', async () => {
    const web = await runningTasks('web');
    expect(web.some((t) => nodeNames.get(t.nodeId) === manager.name)).toBe(false);
    const outside = cluster.workers()[0]!;
    for (const target of cluster.hosts) {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await getFromHost(outside, `http://${target.ip}:8080/`);
        expect(r.code, `${target.name}: ${r.stderr}`).toBe(0);
        seen.add(r.stdout.trim());
      }
      expect(seen.size, `replicas answering on ${target.name}`).toBeGreaterThan(1);
    }
  });

  it('follows a task that goes away: its address stops answering, DNS drops it', async () => {
    const [client] = await runningTasks('client');
    const before = await runningTasks('web');
    await manager.ok(['service', 'scale', 'web=2'], 120_000);
    const after = await runningTasks('web');
    const gone = before.find((t) => !after.some((a) => a.id === t.id))!;
    const goneIp = gone.networks[0]!.addresses[0]!;
    await cluster.waitFor('the removed task to stop', async () => {
      const t = (await manager.json<TaskView[]>(['service', 'ps', 'web'])).find((x) => x.id === gone.id);
      return !t || ['shutdown', 'complete', 'failed'].includes(t.status.state) ? true : undefined;
    }, 30_000);
    const ping = await execIn(client!, ['ping', '-c', '1', '-W', '2', goneIp]);
    expect(ping.code).not.toBe(0);
    await cluster.waitFor('DNS without the removed task', async () => {
      const r = await execIn(client!, ['nslookup', 'tasks.web']);
      return r.stdout.includes(goneIp) ? undefined : true;
    }, 10_000);
    const still = after.find((t) => t.nodeId !== client!.nodeId) ?? after[0]!;
    const ok = await execIn(client!, ['ping', '-c', '1', '-W', '3', still.networks[0]!.addresses[0]!]);
    expect(ok.code).toBe(0);
  });

  it('runs a standalone container on an attachable network: reachable by name, refused elsewhere, released on removal', async () => {
    await manager.ok(['network', 'create', '--driver', 'overlay', '--attachable', 'attnet']);
    await manager.ok(['service', 'create', '--name', 'svc', '--network', 'attnet', '--max-replicas-per-node', '1', '--replicas', '2', IMAGE, 'sleep', '3600'], 120_000);
    const svcTasks = await runningTasks('svc');
    // A host with one of the service's tasks: the other task is on another host.
    const host = cluster.workers().find((w) => svcTasks.some((t) => nodeNames.get(t.nodeId) === w.name))!;

    // Refusals, one line each, and nothing left half-made.
    const notAttachable = await host.cli(['container', 'run', '--rm', '--network', 'appnet', IMAGE, 'true']);
    expect(notAttachable.code).not.toBe(0);
    expect(notAttachable.stderr.trim()).toMatch(/^tsswarm: .*network appnet is not manually attachable/);
    expect(notAttachable.stderr.trim().split('\n')).toHaveLength(1);
    const missing = await host.cli(['container', 'run', '--rm', '--network', 'nosuch', IMAGE, 'true']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toMatch(/network nosuch not found/);
    const ingress = await host.cli(['container', 'run', '--rm', '--network', 'ingress', IMAGE, 'true']);
    expect(ingress.stderr.trim()).toMatch(/routing mesh/);

    await host.ok(['container', 'run', '-d', '--name', 'solo', '--network', 'attnet', IMAGE, 'sleep', '3600']);
    const solo = (JSON.parse(await host.ok(['container', 'inspect', 'solo'])) as { networkSettings: { ipAddress: string } }[])[0]!;
    const soloIp = solo.networkSettings.ipAddress;
    expect(soloIp).toMatch(/^10\.\d+\.\d+\.\d+$/);

    // network inspect shows who is on the network: the service's VIP, its tasks, and the container.
    const inspected = JSON.parse(await manager.ok(['network', 'inspect', 'attnet']))[0] as { endpoints: { kind: string; name: string; address: string; node: string }[] };
    expect(inspected.endpoints.filter((e) => e.kind === 'task')).toHaveLength(2);
    expect(inspected.endpoints.filter((e) => e.kind === 'vip').map((e) => e.name)).toEqual(['svc']);
    expect(inspected.endpoints.find((e) => e.kind === 'container')).toEqual({ kind: 'container', name: 'solo', address: soloIp, node: host.name, id: expect.any(String) });

    // The service's tasks, on this host and others, reach the container by name and by address.
    for (const t of svcTasks) {
      const byName = await execIn(t, ['ping', '-c', '1', '-W', '3', 'solo']);
      expect(byName.code, byName.stderr + byName.stdout).toBe(0);
      expect(byName.stdout).toContain(soloIp);
    }
    // And the container finds the service by name and reaches a task on another host.
    const service = JSON.parse(await manager.ok(['service', 'inspect', 'svc']))[0] as { endpoint: { virtualIps: { addr: string }[] } };
    const lookup = await host.cli(['container', 'exec', 'solo', 'nslookup', 'svc']);
    expect(lookup.stdout).toContain(service.endpoint.virtualIps[0]!.addr.split('/')[0]);
    const remote = svcTasks.find((t) => nodeNames.get(t.nodeId) !== host.name)!;
    const ping = await host.cli(['container', 'exec', 'solo', 'ping', '-c', '1', '-W', '3', remote.networks[0]!.addresses[0]!]);
    expect(ping.code, ping.stderr + ping.stdout).toBe(0);
    // A foreground --rm container on the network, as `docker run --rm --network`.
    const once = await host.cli(['container', 'run', '--rm', '--network', 'attnet', IMAGE, 'nslookup', 'solo']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toContain(soloIp);

    // The daemon killed and restarted: the container keeps its network and is still found by name.
    await host.restart();
    await cluster.waitFor(`${host.name} back in the swarm`, async () => {
      const n = (await manager.json<{ description: { hostname: string }; status: { state: string } }[]>(['node', 'ls'])).find((x) => x.description.hostname === host.name);
      return n?.status.state === 'ready' ? true : undefined;
    }, 30_000);
    const after = await execIn(remote, ['ping', '-c', '1', '-W', '3', 'solo']);
    expect(after.code, after.stderr + after.stdout).toBe(0);

    await manager.ok(['service', 'rm', 'svc']);
    const inUse = await manager.cli(['network', 'rm', 'attnet']);
    expect(inUse.code).not.toBe(0);
    expect(inUse.stderr.trim()).toMatch(/network attnet is in use by container solo/);
    await host.ok(['container', 'rm', '-f', 'solo']);
    // The container's removal released its attachment: once the service's tasks have stopped too,
    // nothing holds the network.
    await cluster.waitFor('attnet removable', async () => ((await manager.cli(['network', 'rm', 'attnet'])).code === 0 ? true : undefined), 60_000);
  });

  it('leaves no namespace, link or rule behind once the services and the network are gone', async () => {
    await manager.ok(['service', 'rm', 'web', 'client']);
    await cluster.waitFor('appnet removable', async () => ((await manager.cli(['network', 'rm', 'appnet'])).code === 0 ? true : undefined), 60_000);
    // The daemons name what they make c<run>h<host>-... (cluster-test/host.ts networkPrefixOf).
    let left: string[] = [];
    await cluster.waitFor('no overlay namespaces left', async () => {
      left = (await listNetns()).filter((n) => n.startsWith(`c${cluster.runId}h`));
      return left.length === 0 ? true : undefined;
    }, 30_000).catch((err) => { throw new Error(`${(err as Error).message}: ${left.join(' ')}`); });
    for (const h of cluster.hosts) {
      const tables = await sh('ip', ['netns', 'exec', h.netns, 'nft', 'list', 'tables']);
      expect(tables.stdout, h.name).not.toMatch(/tsswarm|c\d+h\d+/);
      const links = await sh('ip', ['-n', h.netns, '-o', 'link', 'show']);
      expect(links.stdout.split('\n').filter((l) => /vx|veth|-ig/.test(l)), h.name).toEqual([]);
    }
  });
});
