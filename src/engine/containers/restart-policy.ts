/**
 * `--restart`: whether a container that exited runs again, and after how long. The delay doubles
 * from 100 ms at every restart up to a minute, as dockerd's does, so a container that crashes at
 * start does not spin the node.
 */
import type { ContainerRecord } from '../../api/container.js';

const RESTART_BACKOFF_MS = { first: 100, max: 60_000 };

export function shouldRestart(r: ContainerRecord): boolean {
  if (r.stoppedByUser) return false;
  const p = r.spec.restart;
  switch (p.name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return r.state.exitCode !== 0 && (p.maxRetries === 0 || r.state.restartCount < p.maxRetries);
    default:
      return false;
  }
}

/** The wait before the next run of a container restarted `restartCount` times so far. */
export function restartDelayMs(restartCount: number): number {
  return Math.min(RESTART_BACKOFF_MS.max, RESTART_BACKOFF_MS.first * 2 ** Math.min(restartCount, 16));
}
