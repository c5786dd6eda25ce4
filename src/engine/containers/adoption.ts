/**
 * After a daemon restart: what became of each container while no daemon watched it. The shim, not
 * the daemon, is a container's parent, so a container may have kept running, exited (its shim wrote
 * exit.json), or lost its shim (killed with it, or the machine rebooted) without a record.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ContainerRecord, ExitRecord } from '../../api/container.js';

export type Leftover =
  | { record: ContainerRecord; found: 'stopped' }
  /** It was waiting for its restart delay: the restart is due now. */
  | { record: ContainerRecord; found: 'restart-due' }
  | { record: ContainerRecord; found: 'exited'; exit: ExitRecord }
  | { record: ContainerRecord; found: 'running' }
  | { record: ContainerRecord; found: 'shim-lost' };

/** Every container directory under `dir` with a readable record, and what its files say happened. */
export async function findLeftovers(dir: string, log: Logger): Promise<Leftover[]> {
  const found: Leftover[] = [];
  for (const id of await readdir(dir)) {
    const cdir = join(dir, id);
    let record: ContainerRecord;
    try {
      record = JSON.parse(await readFile(join(cdir, 'container.json'), 'utf8')) as ContainerRecord;
    } catch (err) {
      log.warn({ dir: cdir, err: (err as Error).message }, 'skipping container dir without a readable container.json');
      continue;
    }
    found.push(await classify(cdir, record));
  }
  return found;
}

async function classify(cdir: string, record: ContainerRecord): Promise<Leftover> {
  const s = record.state.status;
  if (s === 'restarting') return { record, found: 'restart-due' };
  if (s !== 'running' && s !== 'paused') return { record, found: 'stopped' };
  const exitJson = await readFile(join(cdir, 'exit.json'), 'utf8').catch(() => undefined);
  if (exitJson) return { record, found: 'exited', exit: JSON.parse(exitJson) as ExitRecord };
  return { record, found: (await shimAlive(cdir, record.id)) ? 'running' : 'shim-lost' };
}

async function shimAlive(cdir: string, id: string): Promise<boolean> {
  const pid = Number(await readFile(join(cdir, 'shim.pid'), 'utf8').catch(() => '0'));
  if (!pid) return false;
  // The pid could have been reused: the live shim names its container on its command line.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes(id);
}
