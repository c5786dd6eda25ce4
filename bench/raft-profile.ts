/**
 * Profiling aid for bench:raft (not a benchmark): starts three kvnode processes, drives the leader
 * with 100-byte puts at one concurrency from a separate process, and prints the CPU time each
 * process spent per write. RAFT_PROFILE_FLAGS adds node flags to the raft processes (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof"; the profile is written on the SIGTERM at the end).
 *   node dist/bench/raft-profile.js [concurrency] [writes]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvClient } from '../testkit/raft/kv/kvclient.js';
import { freePort, startKvNode, type NodeSpec } from '../testkit/raft/kv/procs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const KVNODE = join(HERE, '../testkit/raft/kv/kvnode.js');
const BENCH = join(HERE, 'raft.js');

/** user+system CPU seconds of a process */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function main(): Promise<void> {
  const conc = Number(process.argv[2] ?? 64);
  const n = Number(process.argv[3] ?? 15000);
  const root = mkdtempSync(join(tmpdir(), 'tsswarm-raft-profile-'));
  const specs: NodeSpec[] = [];
  for (let id = 1; id <= 3; id++) specs.push({ id, port: await freePort(), dataDir: join(root, `n${id}`) });
  const flags = [...(process.env.RAFT_PROFILE_FLAGS ?? '--optimize-for-size').split(' ').filter(Boolean)];
  const args = ['--tick-ms', '50', '--election-ticks', '10', '--snapshot-every', process.env.RAFT_PROFILE_SNAPSHOT_EVERY ?? '10000'];
  const procs = await Promise.all(specs.map((s) => startKvNode(KVNODE, s, specs, args, flags)));
  const kv = new KvClient(specs.map((s) => `127.0.0.1:${s.port}`));
  let leader = -1;
  while (leader < 0) {
    for (let i = 0; i < 3; i++) if ((await kv.status(i, 300, true).catch(() => null))?.role === 'leader') leader = i;
    await new Promise((r) => setTimeout(r, 50));
  }
  const before = procs.map((p) => cpuSeconds(p.pid!));
  const t0 = performance.now();
  const driver = spawn(process.execPath, [BENCH, '--driver', process.env.RAFT_PROFILE_CLIENT ?? 'tsswarm', `127.0.0.1:${specs[leader]!.port}`, String(conc), String(n), 'p'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  driver.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const driverCpu = await new Promise<number>((resolve) => {
    let last = 0;
    const iv = setInterval(() => { try { last = cpuSeconds(driver.pid!); } catch { /* exited */ } }, 100);
    driver.once('exit', () => { clearInterval(iv); resolve(last); });
  });
  const secs = (performance.now() - t0) / 1000;
  const after = procs.map((p) => cpuSeconds(p.pid!));
  console.log(out.trim());
  console.log(`wall ${secs.toFixed(2)} s; leader is node ${leader + 1}`);
  for (let i = 0; i < 3; i++) {
    const cpu = after[i]! - before[i]!;
    console.log(`node ${i + 1}${i === leader ? ' (leader)' : ''}: cpu ${cpu.toFixed(2)} s = ${((cpu / n) * 1e6).toFixed(0)} us/write, ${((cpu / secs) * 100).toFixed(0)}% of a core`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const rss = procs.map((p) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))![1]) / 1024);
  console.log(`RSS ${rss.map((x) => x.toFixed(0)).join(' / ')} MiB`);
  console.log(`client: cpu ~${driverCpu.toFixed(2)} s = ${((driverCpu / n) * 1e6).toFixed(0)} us/write`);
  kv.close();
  for (const p of procs) {
    const gone = new Promise((r) => p.once('exit', r));
    process.kill(p.pid!, 'SIGTERM');
    await gone;
  }
  rmSync(root, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(`raft-profile failed: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
