import { createHash } from 'node:crypto';
import { join } from 'node:path';

/**
 * Where the OCI runtime keeps the state of a daemon's containers: per boot (tmpfs under /run) and per
 * data dir, so that daemons side by side never see each other's containers.
 */
export function runtimeStateRoot(dataDir: string): string {
  return join('/run/tsswarm/runtime', createHash('sha256').update(dataDir).digest('hex').slice(0, 16));
}
