/**
 * npm run bench:overlay — tsswarm's overlay against the raw underlay and a hand-built kernel VXLAN
 * (the anchor of /work/shared/ANCHORS.md, built here in the same run on the same test hosts).
 *
 * Two test hosts (namespaces tswb-ov-h1/h2 on a fabric bridge, underlay MTU 1500); a driver runs in
 * each. Measured, interleaved per repetition so that load from elsewhere hits all paths alike:
 *   - TCP throughput (iperf3, one stream) host → host, kernel-VXLAN container → container, and
 *     tsswarm container → container; latency (ping) on the same paths;
 *   - attach time (driver.attach, measured inside the driver's process) p50 over 50 containers, with
 *     and without a VIP service on the network (which adds the task's nftables table). Host 1's driver
 *     uses native tsswarm-netattach; host 2's has none and takes the `unshare` + `ip -batch` path, its
 *     attaches interleaved with host 1's as the anchor (attach_ip_batch_p50_ms);
 *   - VIP spread: 3000 HTTP connections to a VIP with 3 tasks, count per task.
 * Env: OVERLAY_BENCH_SECONDS (iperf3 -t, default 3), OVERLAY_BENCH_REPS (default 5),
 *      OVERLAY_BENCH_ATTACH (default 50), OVERLAY_BENCH_CONNECTIONS (default 3000).
 * Prints a table and, last, `RESULT {json}`.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { runTool } from '../src/network/commands.js';
import { macForIp } from '../src/network/addresses.js';
import { TestFabric } from '../testkit/network-hosts.js';
import { nativeDir } from '../src/engine/runtime/driver.js';
import type { NodeNetworkState, OverlayNetworkState } from '../src/network/types.js';

const SECONDS = Number(process.env.OVERLAY_BENCH_SECONDS ?? 3);
const REPS = Number(process.env.OVERLAY_BENCH_REPS ?? 5);
const ATTACHES = Number(process.env.OVERLAY_BENCH_ATTACH ?? 50);
const CONNECTIONS = Number(process.env.OVERLAY_BENCH_CONNECTIONS ?? 3000);
const WWW = '/tmp/tswb-ov-www';

const NET: Omit<OverlayNetworkState, 'endpoints' | 'services'> = {
  id: 'bench-net', name: 'bench', vni: 4501, subnet: '10.61.0.0/16', gateway: '10.61.0.1', ingress: false,
};
const ANCHOR = { vni: 4502, subnet: '10.62.0', mtu: 1450 };

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** The anchor: Docker-style VXLAN built by hand in the host namespaces, one ip batch per namespace. */
async function buildKernelVxlan(fabric: TestFabric): Promise<string[]> {
  const containers: string[] = [];
  for (let h = 0; h < 2; h++) {
    const ctr = `${fabric.tag}-k${h + 1}`;
    const ip = `${ANCHOR.subnet}.${h + 2}`;
    const peer = `${ANCHOR.subnet}.${3 - h}`;
    containers.push(ctr);
    await runTool('anchor', 'ip', ['-batch', '-'], `netns add ${ctr}\n`);
    await runTool('anchor', 'ip', ['-n', fabric.host(h), '-batch', '-'], [
      `link add kbr mtu ${ANCHOR.mtu} type bridge`, 'link set kbr up',
      `link add kvx mtu ${ANCHOR.mtu} type vxlan id ${ANCHOR.vni} dstport 4789 local ${fabric.address(h)} nolearning proxy`,
      'link set kvx master kbr up',
      `link add kh mtu ${ANCHOR.mtu} type veth peer name ke netns ${ctr} mtu ${ANCHOR.mtu} address ${macForIp(ip)}`,
      'link set kh master kbr up',
      `neigh replace ${peer} lladdr ${macForIp(peer)} dev kvx nud permanent`,
      '',
    ].join('\n'));
    await runTool('anchor', 'bridge', ['-n', fabric.host(h), 'fdb', 'replace', macForIp(peer), 'dev', 'kvx', 'dst', fabric.address(1 - h), 'self', 'permanent']);
    await runTool('anchor', 'ip', ['-n', ctr, '-batch', '-'], `link set lo up\naddr add ${ip}/24 dev ke\nlink set ke up\n`);
  }
  return containers;
}

interface IperfRun {
  gbps: number;
  /** Gbit/s per fully busy core (iperf3's own sender + receiver CPU accounting): far less sensitive
   *  to other load on the machine than raw throughput, as in the anchor script. */
  perCore: number;
}

async function iperf(fabric: TestFabric, clientNetns: string, serverIp: string): Promise<IperfRun> {
  const r = await fabric.exec(clientNetns, ['iperf3', '-c', serverIp, '-t', String(SECONDS), '-J'], (SECONDS + 15) * 1000);
  try {
    const end = (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number }; cpu_utilization_percent: { host_total: number; remote_total: number } } }).end;
    const gbps = end.sum_received.bits_per_second / 1e9;
    const cpu = (end.cpu_utilization_percent.host_total + end.cpu_utilization_percent.remote_total) / 100;
    return { gbps, perCore: cpu > 0 ? gbps / cpu : NaN };
  } catch {
    console.error(`iperf3 to ${serverIp} failed: ${r.stdout.slice(0, 200)} ${r.stderr.slice(0, 200)}`);
    return { gbps: NaN, perCore: NaN };
  }
}

async function pingRtt(fabric: TestFabric, fromNetns: string, ip: string): Promise<number> {
  const r = await fabric.exec(fromNetns, ['busybox', 'ping', '-q', '-c', '50', '-i', '0.01', ip], 20_000);
  const m = /min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return m ? Number(m[1]) : NaN;
}

async function waitListening(fabric: TestFabric, netns: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await fabric.exec(netns, ['ss', '-Hltn', `sport = :${port}`]);
    if (r.stdout.trim()) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`nothing listens on ${port} in ${netns}`);
}

const progress = (msg: string) => process.stderr.write(`bench:overlay: ${msg}\n`);

async function main(): Promise<void> {
  const fabric = await TestFabric.create('tswb-ov', 2);
  // Interrupted: still remove every namespace and process this run made.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { void fabric.destroy().finally(() => process.exit(130)); });
  }
  try {
    const netattach = `${nativeDir()}/tsswarm-netattach`;
    if (!existsSync(netattach)) throw new Error(`${netattach} is missing: make -C native`);
    const drivers = [
      fabric.startDriver(0, 'tswb-o1', { upstreams: ['127.0.0.1:53'], netattach }),
      fabric.startDriver(1, 'tswb-o2', { upstreams: ['127.0.0.1:53'] }), // the ip -batch path
    ];
    let endpoints = [{ ip: '10.61.0.10', vtep: fabric.address(0) }, { ip: '10.61.0.11', vtep: fabric.address(1) }];
    let services: OverlayNetworkState['services'] = [];
    const state = (h: number): NodeNetworkState => ({ vtep: fabric.address(h), networks: [{ ...NET, endpoints, services }], published: [] });
    const applyAll = () => Promise.all(drivers.map((d, h) => d.apply(state(h))));
    await applyAll();
    const c1 = await drivers[0]!.attach('benchc1000000001', 'c1', [{ networkId: NET.id, ip: '10.61.0.10' }]);
    const c2 = await drivers[1]!.attach('benchc2000000002', 'c2', [{ networkId: NET.id, ip: '10.61.0.11' }]);
    const [k1, k2] = await buildKernelVxlan(fabric);

    // Paths: name, client namespace, server namespace, server address.
    const paths = [
      { name: 'underlay', client: fabric.host(0), server: fabric.host(1), ip: fabric.address(1) },
      { name: 'kernel_vxlan', client: `/run/netns/${k1}`, server: `/run/netns/${k2}`, ip: `${ANCHOR.subnet}.3` },
      { name: 'tsswarm', client: c1.netnsPath, server: c2.netnsPath, ip: '10.61.0.11' },
    ];
    progress('overlay and anchor built; starting iperf3 servers');
    for (const p of paths) {
      fabric.background(p.server, ['iperf3', '-s', '-B', p.ip]);
      await waitListening(fabric, p.server, 5201);
    }
    const gbps = new Map<string, number[]>(paths.map((p) => [p.name, []]));
    const perCore = new Map<string, number[]>(paths.map((p) => [p.name, []]));
    const loadBefore = (await runTool('loadavg', 'cat', ['/proc/loadavg'])).stdout.trim();
    for (let rep = 0; rep < REPS; rep++) {
      for (const p of paths) {
        const run = await iperf(fabric, p.client, p.ip);
        gbps.get(p.name)!.push(run.gbps);
        perCore.get(p.name)!.push(run.perCore);
      }
    }
    progress('throughput measured; ping');
    const rtt = new Map<string, number>();
    for (const p of paths) rtt.set(p.name, await pingRtt(fabric, p.client, p.ip));
    const paired = gbps.get('tsswarm')!.map((x, i) => x / gbps.get('kernel_vxlan')![i]!);
    const ratio = median(paired);

    progress('attach times');
    // Attach time: ATTACHES containers on host 1, then again with a VIP service on the network.
    const attachMs: number[] = [];
    const ipBatchAttachMs: number[] = [];
    const trueMs: number[] = [];
    const ipMs: number[] = [];
    for (let i = 0; i < ATTACHES; i++) {
      // Interleaved with the attaches: what a bare spawn costs at the same moment.
      const floor = await drivers[0]!.spawnFloor();
      trueMs.push(floor.trueMs);
      ipMs.push(floor.ipMs);
      const r = await drivers[0]!.attach(`${String(i).padStart(4, '0')}attach000000`, `a${i}`, [{ networkId: NET.id, ip: `10.61.1.${i + 10}` }]);
      attachMs.push(r.ms);
      const anchor = await drivers[1]!.attach(`${String(i).padStart(4, '0')}ipbatc000000`, `b${i}`, [{ networkId: NET.id, ip: `10.61.4.${i + 10}` }]);
      ipBatchAttachMs.push(anchor.ms);
    }
    for (let i = 0; i < ATTACHES; i++) await drivers[0]!.detach(`${String(i).padStart(4, '0')}attach000000`);
    for (let i = 0; i < ATTACHES; i++) await drivers[1]!.detach(`${String(i).padStart(4, '0')}ipbatc000000`);

    // VIP spread: three tasks (one on host 1, two on host 2) serving their own name.
    const web = [
      { id: 'web1benchtask001', host: 0, ip: '10.61.2.1' },
      { id: 'web2benchtask002', host: 1, ip: '10.61.2.2' },
      { id: 'web3benchtask003', host: 1, ip: '10.61.2.3' },
    ];
    endpoints = [...endpoints, ...web.map((w) => ({ ip: w.ip, vtep: fabric.address(w.host) }))];
    services = [{ name: 'web', mode: 'vip', vip: '10.61.255.1', tasks: web.map((w) => ({ name: w.id, ip: w.ip })) }];
    await applyAll();
    for (const w of web) {
      const sandbox = await drivers[w.host]!.attach(w.id, w.id, [{ networkId: NET.id, ip: w.ip }]);
      mkdirSync(`${WWW}/${w.id}`, { recursive: true });
      writeFileSync(`${WWW}/${w.id}/index.html`, `${w.id}\n`);
      fabric.background(sandbox.netnsPath, ['busybox', 'httpd', '-f', '-p', '80', '-h', `${WWW}/${w.id}`]);
      await waitListening(fabric, sandbox.netnsPath, 80);
    }
    progress('attach times with a VIP service');
    const vipAttachMs: number[] = [];
    for (let i = 0; i < ATTACHES; i++) {
      const r = await drivers[0]!.attach(`${String(i).padStart(4, '0')}vipatt000000`, `v${i}`, [{ networkId: NET.id, ip: `10.61.3.${i + 10}` }]);
      vipAttachMs.push(r.ms);
    }
    for (let i = 0; i < ATTACHES; i++) await drivers[0]!.detach(`${String(i).padStart(4, '0')}vipatt000000`);
    const client = `/run/netns/tswb-o1-t-benchc100000`;
    const loop = `i=0; while [ $i -lt ${CONNECTIONS} ]; do busybox wget -q -O - http://10.61.255.1/ || echo FAIL; i=$((i+1)); done`;
    progress(`VIP spread over ${CONNECTIONS} connections`);
    const spreadStart = Date.now();
    const spreadRun = await fabric.exec(client, ['sh', '-c', loop], 600_000);
    const spreadSeconds = (Date.now() - spreadStart) / 1000;
    const counts = new Map<string, number>();
    for (const line of spreadRun.stdout.split('\n').filter(Boolean)) counts.set(line, (counts.get(line) ?? 0) + 1);
    const even = CONNECTIONS / web.length;
    const perTask = web.map((w) => counts.get(w.id) ?? 0);
    const spreadDeviation = Math.max(...perTask.map((n) => Math.abs(n - even) / even));

    const result = {
      underlay_gbps: round(median(gbps.get('underlay')!)),
      kernel_vxlan_gbps: round(median(gbps.get('kernel_vxlan')!)),
      tsswarm_gbps: round(median(gbps.get('tsswarm')!)),
      ratio_vs_kernel_vxlan: round(ratio, 3),
      ratio_vs_kernel_vxlan_per_core: round(median(perCore.get('tsswarm')!.map((x, i) => x / perCore.get('kernel_vxlan')![i]!)), 3),
      gbps_per_core: { underlay: round(median(perCore.get('underlay')!)), kernel_vxlan: round(median(perCore.get('kernel_vxlan')!)), tsswarm: round(median(perCore.get('tsswarm')!)) },
      ratio_vs_underlay: round(median(gbps.get('tsswarm')!.map((x, i) => x / gbps.get('underlay')![i]!)), 3),
      rtt_ms: { underlay: rtt.get('underlay'), kernel_vxlan: rtt.get('kernel_vxlan'), tsswarm: rtt.get('tsswarm') },
      attach_p50_ms: round(median(attachMs)),
      attach_p95_ms: round([...attachMs].sort((a, b) => a - b)[Math.floor(attachMs.length * 0.95)] ?? NaN),
      attach_ip_batch_p50_ms: round(median(ipBatchAttachMs)),
      attach_speedup_vs_ip_batch: round(median(ipBatchAttachMs) / median(attachMs)),
      spawn_true_p50_ms: round(median(trueMs)),
      spawn_ip_batch_p50_ms: round(median(ipMs)),
      attach_with_vip_p50_ms: round(median(vipAttachMs)),
      attach_runs: ATTACHES,
      vip_connections: CONNECTIONS,
      vip_per_task: perTask,
      vip_failed: counts.get('FAIL') ?? 0,
      vip_max_deviation_from_even: round(spreadDeviation, 4),
      iperf_seconds: SECONDS,
      reps: REPS,
      loadavg_before: loadBefore,
      loadavg_after: (await runTool('loadavg', 'cat', ['/proc/loadavg'])).stdout.trim(),
    };
    console.log(`overlay: iperf3 one TCP stream, ${SECONDS} s x ${REPS} interleaved reps; ping -c 50 -i 0.01; underlay MTU 1500, overlay 1450`);
    console.log(`${'path'.padEnd(16)}${'Gbit/s (median)'.padStart(17)}  ${'per rep'.padEnd(32)}${'Gbit/s/core'.padStart(13)}${'rtt ms'.padStart(10)}`);
    for (const p of paths) {
      console.log(`${p.name.padEnd(16)}${round(median(gbps.get(p.name)!)).toFixed(2).padStart(17)}  ${gbps.get(p.name)!.map((x) => round(x).toFixed(2)).join(' ').padEnd(32)}${round(median(perCore.get(p.name)!)).toFixed(2).padStart(13)}${String(rtt.get(p.name)).padStart(10)}`);
    }
    console.log(`ratio tsswarm / kernel VXLAN (median of paired reps): ${result.ratio_vs_kernel_vxlan}  (target >= 0.95); per busy core: ${result.ratio_vs_kernel_vxlan_per_core}`);
    console.log(`machine load (other work shares these 2 vCPUs): before ${loadBefore}, after ${result.loadavg_after}`);
    console.log(`attach p50 over ${ATTACHES} containers: ${result.attach_p50_ms} ms (p95 ${result.attach_p95_ms}); with a VIP service on the network: ${result.attach_with_vip_p50_ms} ms  (target p50 <= 5)`);
    console.log(`  one tsswarm-netattach process per attach (rtnetlink); interleaved, the unshare -> ip -batch path on host 2: p50 ${result.attach_ip_batch_p50_ms} ms (${result.attach_speedup_vs_ip_batch}x); a bare spawn of /bin/true took p50 ${result.spawn_true_p50_ms} ms and of ip -batch ${result.spawn_ip_batch_p50_ms} ms`);
    console.log(`VIP spread over ${CONNECTIONS} connections to 3 tasks (${round(spreadSeconds, 1)} s): ${perTask.join(' / ')}, max deviation from even ${round(spreadDeviation * 100, 2)}%  (target <= 10%)`);
    console.log(`RESULT ${JSON.stringify(result)}`);
    void c2;
  } finally {
    await fabric.destroy();
    rmSync(WWW, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench:overlay: ${err.message}`);
  process.exit(1);
});
