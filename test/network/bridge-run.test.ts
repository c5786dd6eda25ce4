/**
 * `container run --network bridge -p HOST:CONTAINER` on a real daemon inside a test host (a network
 * namespace on a fabric, cluster-test/harness.ts): containers get an address on the daemon's bridge,
 * reach each other, and a published port answers from another host and from the host itself.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, IMAGE, type Cluster, type Host } from '../../cluster-test/harness.js';

let cluster: Cluster;
let h1: Host;
let h2: Host;

function curl(from: Host, url: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=/run/netns/${from.netns}`, '--', 'curl', '-sS', '-m', '3', url], { encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: err ? stderr : stdout.trim() }));
  });
}

const listNetns = () => new Promise<string[]>((resolve) => {
  execFile('ip', ['netns', 'list'], { encoding: 'utf8' }, (_e, out) => resolve(out.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean)));
});

beforeAll(async () => {
  cluster = await createCluster({ hosts: 2, managers: 1, formSwarm: false });
  [h1, h2] = cluster.hosts as [Host, Host];
}, 180_000);

afterAll(async () => {
  await cluster?.destroy();
}, 60_000);

describe('the bridge network of container run', () => {
  it('publishes a port on the host, reachable from another host and from the host itself', async () => {
    await h1.ok(['run', '-d', '--name', 'web', '-p', '8080:80', IMAGE, 'sh', '-c', 'mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www']);
    await cluster.waitFor('web answering on h1:8080 from h2', async () => ((await curl(h2, `http://${h1.ip}:8080/`)).out === 'hello-from-web' ? true : undefined), 15_000);
    expect((await curl(h1, `http://${h1.ip}:8080/`)).out).toBe('hello-from-web');
  });

  it('gives containers addresses on the bridge from which they reach each other', async () => {
    const web = JSON.parse(await h1.ok(['container', 'inspect', 'web']))[0];
    const ip = web.networkSettings.ipAddress as string;
    expect(ip).toMatch(/^172\.29\./);
    const r = await h1.cli(['run', '--rm', '--network', 'bridge', IMAGE, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80 | tail -n 1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('hello-from-web');
  });

  it('refuses a published port already taken, and -p without the bridge, in one line', async () => {
    const clash = await h1.cli(['run', '-d', '-p', '8080:81', IMAGE, 'sleep', '60']);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr.trim().split('\n')).toHaveLength(1);
    expect(clash.stderr).toMatch(/8080/);
    const none = await h1.cli(['run', '--rm', '--network', 'none', '-p', '8081:80', IMAGE, 'true']);
    expect(none.code).toBe(125);
    expect(none.stderr).toMatch(/only be published on the bridge network/);
  });

  it('stops answering and leaves no namespace behind once the container is removed', async () => {
    await h1.ok(['rm', '-f', 'web']);
    expect((await curl(h2, `http://${h1.ip}:8080/`)).code).not.toBe(0);
    const prefix = `c${cluster.runId}h1-c`;
    expect((await listNetns()).filter((n) => n.startsWith(prefix))).toEqual([]);
  });
});
