import { spawn, type ChildProcess } from 'node:child_process';

/** Helpers for tests and benchmarks that run raft nodes as separate processes on loopback. */

export { freePort } from '../../ports.js';

export interface NodeSpec {
  id: number;
  port: number;
  dataDir: string;
}

/** Starts one kvnode process; resolves once it prints READY. */
export function startKvNode(
  script: string, spec: NodeSpec, all: NodeSpec[], extra: string[] = [], nodeFlags: string[] = [],
): Promise<ChildProcess> {
  const peers = all.map((n) => `${n.id}=127.0.0.1:${n.port}`).join(',');
  const child = spawn(
    process.execPath,
    [...nodeFlags, script, '--id', String(spec.id), '--addr', `127.0.0.1:${spec.port}`, '--data', spec.dataDir, '--peers', peers, ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node ${spec.id} did not start`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${spec.id} exited with ${code} before READY`));
    });
  });
}

/** SIGKILL a child we spawned, by its PID, and wait for it to be gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGKILL');
  await gone;
}
