/**
 * native/build/tsswarm-netattach on the real kernel. It runs inside a test "daemon" namespace
 * (tswt-na-h, through nsenter, sharing our mount namespace as the driver does) against two sandboxes
 * made here the way the driver makes them (a bridge br0 with index 100): tswt-na-sb1, tswt-na-sb2, and
 * tswt-na-nobr (no bridge). Every namespace is named tswt-na-* and removed in afterAll, even when a
 * test fails. The root namespace is never touched.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeDir } from '../../src/engine/runtime/driver.js';

const PREFIX = 'tswt-na-';
const HOST = `${PREFIX}h`;
const BINARY = `${nativeDir()}/tsswarm-netattach`;

function sh(argv: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, timeout: 10_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function must(argv: string[], input?: string): string {
  const r = sh(argv, input);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Runs the binary inside the test daemon namespace. */
function netattach(args: string[]): { code: number; stdout: string; stderr: string } {
  return sh(['nsenter', `--net=/run/netns/${HOST}`, BINARY, ...args]);
}

function ours(): string[] {
  try { return readdirSync('/run/netns').filter((n) => n.startsWith(PREFIX)); } catch { return []; }
}

interface Link { ifname: string; mtu: number; flags: string[]; address: string; master?: string; addr_info?: { family: string; local: string; prefixlen: number }[] }

function links(netns: string): Link[] {
  return JSON.parse(must(['ip', '-n', netns, '-j', 'addr', 'show'])) as Link[];
}

function link(netns: string, name: string): Link | undefined {
  return links(netns).find((l) => l.ifname === name);
}

function removeOurs(): void {
  const names = ours();
  if (names.length > 0) sh(['ip', '-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n') + '\n');
}

beforeAll(() => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: make -C native`);
  removeOurs(); // a previous run killed before its afterAll
  const batch = [
    `netns add ${HOST}`,
    `netns add ${PREFIX}sb1`,
    `netns add ${PREFIX}sb2`,
    `netns add ${PREFIX}nobr`,
    `-n ${PREFIX}sb1 link add br0 index 100 type bridge`,
    `-n ${PREFIX}sb1 addr add 10.97.1.1/24 dev br0`,
    `-n ${PREFIX}sb1 link set br0 up`,
    `-n ${PREFIX}sb2 link add br0 index 100 type bridge`,
    `-n ${PREFIX}sb2 addr add 10.97.2.1/24 dev br0`,
    `-n ${PREFIX}sb2 link set br0 up`,
  ];
  for (const line of batch) must(['ip', ...line.split(' ')]);
});

afterAll(() => {
  removeOurs();
  expect(ours()).toEqual([]);
});

describe('tsswarm-netattach', () => {
  it('makes the task namespace with one configured veth per network, lo up and the default route', async () => {
    const r = netattach(['-g', '10.97.1.1', `${PREFIX}t1`, 'tna000000001', `${PREFIX}sb1,10.97.1.5/24,1450`, `${PREFIX}sb2,10.97.2.5/24,1400`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const task = `${PREFIX}t1`;
    const eth0 = link(task, 'eth0')!;
    const eth1 = link(task, 'eth1')!;
    expect(eth0.address).toBe('02:42:0a:61:01:05');
    expect(eth0.mtu).toBe(1450);
    expect(eth0.flags).toContain('UP');
    // addrgenmode none: IPv4 only, no link-local IPv6 address.
    expect(eth0.addr_info?.map((a) => `${a.family} ${a.local}/${a.prefixlen}`)).toEqual(['inet 10.97.1.5/24']);
    expect(eth1.address).toBe('02:42:0a:61:02:05');
    expect(eth1.mtu).toBe(1400);
    expect(eth1.addr_info?.map((a) => `${a.family} ${a.local}/${a.prefixlen}`)).toEqual(['inet 10.97.2.5/24']);
    expect(link(task, 'lo')!.flags).toContain('UP');
    expect(must(['ip', '-n', task, 'route', 'show', 'default']).trim()).toBe('default via 10.97.1.1 dev eth0');
    // The host ends sit in the sandboxes, enslaved to br0 and up, at the network's MTU.
    for (const [sandbox, mtu] of [[`${PREFIX}sb1`, 1450], [`${PREFIX}sb2`, 1400]] as const) {
      const host = link(sandbox, 'tna000000001')!;
      expect(host.master).toBe('br0');
      expect(host.flags).toContain('UP');
      expect(host.mtu).toBe(mtu);
    }
    // Nothing landed in the namespace it ran in.
    expect(links(HOST).map((l) => l.ifname)).toEqual(['lo']);
    // Bound like `ip netns add`: under a shared /run/netns mount point.
    const runNetns = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === '/run/netns');
    expect(runNetns.some((l) => / shared:\d+/.test(l))).toBe(true);
    // And traffic flows to both bridges.
    for (const gateway of ['10.97.1.1', '10.97.2.1']) {
      let ok = false;
      for (let i = 0; i < 5 && !ok; i++) ok = sh(['ip', 'netns', 'exec', task, 'busybox', 'ping', '-c', '1', '-W', '1', gateway]).code === 0;
      expect(ok, `ping ${gateway}`).toBe(true);
    }
  });

  it('refuses a namespace name that exists, in one line, and leaves the existing namespace alone', () => {
    const r = netattach(['-g', '10.97.1.1', `${PREFIX}t1`, 'tna000000009', `${PREFIX}sb1,10.97.1.9/24,1450`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/tswt-na-t1: create namespace file \/run\/netns\/tswt-na-t1: File exists \(errno 17\)/);
    expect(link(`${PREFIX}t1`, 'eth0')?.addr_info?.[0]?.local).toBe('10.97.1.5');
    expect(link(`${PREFIX}sb1`, 'tna000000009')).toBeUndefined();
  });

  it('rolls back everything it made when the gateway is unreachable from the task addresses', () => {
    const r = netattach(['-g', '10.96.0.1', `${PREFIX}t2`, 'tna000000002', `${PREFIX}sb1,10.97.1.6/24,1450`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/add default route via 10\.96\.0\.1: Network is unreachable \(errno 101\)/);
    expect(existsSync(`/run/netns/${PREFIX}t2`)).toBe(false);
    expect(link(`${PREFIX}sb1`, 'tna000000002')).toBeUndefined();
  });

  it('rolls back the veths already made when a later attachment fails (a sandbox without the bridge)', () => {
    const r = netattach(['-g', '10.97.1.1', `${PREFIX}t3`, 'tna000000003', `${PREFIX}sb1,10.97.1.7/24,1450`, `${PREFIX}nobr,10.97.3.7/24,1450`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/create veth tna000000003 \(in tswt-na-nobr, master if100\) peer eth1: .*\(errno \d+\)/);
    expect(existsSync(`/run/netns/${PREFIX}t3`)).toBe(false);
    expect(link(`${PREFIX}sb1`, 'tna000000003')).toBeUndefined();
    expect(links(`${PREFIX}nobr`).map((l) => l.ifname)).toEqual(['lo']);
  });

  it('rejects a malformed address or a missing sandbox before making anything', () => {
    const bad = netattach([`${PREFIX}t4`, 'tna000000004', `${PREFIX}sb1,10.97.1.300/24,1450`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/attachment 0: not an IPv4 address: "10\.97\.1\.300"/);
    const missing = netattach([`${PREFIX}t4`, 'tna000000004', `${PREFIX}nosuch,10.97.1.8/24,1450`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/open sandbox namespace \/run\/netns\/tswt-na-nosuch: No such file or directory \(errno 2\)/);
    expect(existsSync(`/run/netns/${PREFIX}t4`)).toBe(false);
  });
});
