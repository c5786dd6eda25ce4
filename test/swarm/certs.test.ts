/**
 * Certificates renew before they expire: a swarm with 12 s certificates outlives them, and a worker
 * restarted after its first certificate expired rejoins with the renewed one.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, TestDaemon } from '../daemon/harness.js';

const BASE_PORT = 28000 + (process.pid % 500) * 4;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;
let manager: TestDaemon;
let worker: TestDaemon;
let scratch: string;

const certOf = (d: TestDaemon) => new X509Certificate(readFileSync(join(d.dataDir, 'swarm', 'certificates', 'swarm-node.crt')));

beforeAll(async () => {
  scratch = tempDir('certs');
  manager = new TestDaemon('ct0', 'tsswarm', ['--listen-addr', addr(0), '--hostname', 'cert-manager']);
  worker = new TestDaemon('ct1', 'tsswarm', ['--listen-addr', addr(1), '--hostname', 'cert-worker']);
  await manager.start();
  await worker.start();
  await manager.ok(['swarm', 'init', '--advertise-addr', addr(0), '--dispatcher-heartbeat', '500ms', '--cert-expiry', '12s']);
  const token = (await manager.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
  await worker.ok(['swarm', 'join', '--token', token, '--listen-addr', addr(1), addr(0)]);
}, 60_000);

afterAll(async () => {
  await manager?.destroy();
  await worker?.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

describe('certificate renewal', () => {
  it('renews every node\'s certificate before it expires, and a restarted node uses the new one', async () => {
    const first = { manager: certOf(manager), worker: certOf(worker) };
    expect(Date.parse(first.worker.validTo) - Date.parse(first.worker.validFrom)).toBeLessThanOrEqual(12_000 + 60_000);
    // Wait until the first certificates have expired.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(first.worker.validTo) - Date.now()) + 1500));
    for (const [d, old] of [[manager, first.manager], [worker, first.worker]] as const) {
      const now = certOf(d);
      expect(now.serialNumber).not.toBe(old.serialNumber);
      expect(Date.parse(now.validTo)).toBeGreaterThan(Date.now());
      expect(now.subject).toBe(old.subject); // same node id and role
    }
    // A new TLS session with the renewed certificate: restart the worker and see it ready again.
    await worker.crash();
    worker.logs = '';
    await worker.start();
    const deadline = Date.now() + 20_000;
    for (;;) {
      const nodes = JSON.parse(await manager.ok(['node', 'ls', '--format', 'json']));
      const w = nodes.find((n: any) => n.description.hostname === 'cert-worker');
      // Only the new process's log: its session was admitted with the renewed certificate.
      const sessions = (worker.logs.match(/session with the dispatcher open/g) ?? []).length;
      if (w?.status.state === 'ready' && sessions > 0) break;
      if (Date.now() > deadline) throw new Error(`worker did not come back: ${worker.logs.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 60_000);
});
