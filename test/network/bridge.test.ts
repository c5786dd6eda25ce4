/**
 * The single-host bridge network on the real kernel, run by a driver process inside a test host
 * (tswt-bn-h1); tswt-bn-h2 is another machine on the same fabric. Everything is removed in afterAll.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestFabric, type DriverClient } from '../../testkit/network-hosts.js';

const BRIDGE = { index: 7, subnet: '172.30.7.0/24' };
const WWW = '/tmp/tswt-bn-www';
let fabric: TestFabric;
let driver: DriverClient;

beforeAll(async () => {
  fabric = await TestFabric.create('tswt-bn', 2);
  driver = fabric.startDriver(0, 'tswt-b1');
}, 60_000);

afterAll(async () => {
  await fabric?.destroy();
  rmSync(WWW, { recursive: true, force: true });
  expect(fabric.leftovers()).toEqual([]);
}, 60_000);

async function httpGet(fromNetns: string, url: string): Promise<string> {
  const r = await fabric.exec(fromNetns, ['busybox', 'wget', '-q', '-O', '-', url], 3_000);
  if (r.code !== 0) throw new Error(`GET ${url} from ${fromNetns} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

describe('bridge network', () => {
  it('gives containers addresses, lets them talk, reach other hosts, and publishes -p ports', async () => {
    const a = await driver.bridgeConnect(BRIDGE, 'cona000000000001', [{ protocol: 'tcp', hostPort: 8081, containerPort: 80 }]);
    const b = await driver.bridgeConnect(BRIDGE, 'conb000000000002');
    expect(a.ip).toBe('172.30.7.2');
    expect(b.ip).toBe('172.30.7.3');
    expect((await fabric.exec(b.netnsPath, ['busybox', 'ping', '-c', '1', '-W', '1', a.ip])).code).toBe(0);
    // Egress is masqueraded: the other host needs no route back to the bridge's subnet.
    expect((await fabric.exec(a.netnsPath, ['busybox', 'ping', '-c', '1', '-W', '1', fabric.address(1)])).code).toBe(0);
    mkdirSync(WWW, { recursive: true });
    writeFileSync(`${WWW}/index.html`, 'container-a\n');
    fabric.background(a.netnsPath, ['busybox', 'httpd', '-f', '-p', '80', '-h', WWW]);
    const deadline = Date.now() + 5_000;
    let answer = '';
    while (Date.now() < deadline && answer !== 'container-a') {
      answer = await httpGet(fabric.host(1), `http://${fabric.address(0)}:8081/`).catch(() => '');
    }
    expect(answer).toBe('container-a'); // from another host
    expect(await httpGet(fabric.host(0), `http://${fabric.address(0)}:8081/`)).toBe('container-a'); // from the host itself
    await expect(driver.bridgeConnect(BRIDGE, 'conc000000000003', [{ protocol: 'tcp', hostPort: 8081, containerPort: 80 }]))
      .rejects.toThrow(/8081\/tcp is already published by container cona00000000/);
  });

  it('reuses a released address and leaves nothing behind on close', async () => {
    await driver.bridgeDisconnect(BRIDGE, 'cona000000000001');
    const c = await driver.bridgeConnect(BRIDGE, 'cond000000000004');
    expect(c.ip).toBe('172.30.7.2');
    const rules = await fabric.exec(fabric.host(0), ['nft', 'list', 'table', 'ip', 'tswt-b1-b7']);
    expect(rules.stdout).not.toContain('8081');
    await driver.bridgeClose(BRIDGE);
    expect(fabric.leftovers().filter((n) => n.startsWith('tswt-b1-'))).toEqual([]);
    const links = await fabric.exec(fabric.host(0), ['ip', '-o', 'link', 'show']);
    expect(links.stdout.split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0])).toEqual(['lo', 'u0']);
    expect((await fabric.exec(fabric.host(0), ['nft', 'list', 'tables'])).stdout.trim()).toBe('');
  });
});
