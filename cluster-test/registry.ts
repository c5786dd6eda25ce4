/**
 * A registry on a test host, so that a swarm's images travel over the fabric as they would between
 * machines: Debian's docker-registry runs in the host's network namespace on its 10.231.x.y address,
 * with its storage and log in the run's work dir. The run owns it by PID (Cluster.own), so destroy()
 * and a later run's cleanupLeftovers() kill it even when a scenario fails half-way. The daemons must
 * be told it is plain HTTP: build the cluster with `daemonArgs: insecureRegistryArgs(index)`.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REGISTRY_BIN, registryTraffic, startRegistry, type RegistryTraffic } from '../testkit/registry.js';
import type { Cluster, Host } from './harness.js';

export const REGISTRY_PORT = 5000;

/** `tsswarm daemon` flags that let every host reach the registry that host `index` will run. */
export function insecureRegistryArgs(index: number, port = REGISTRY_PORT): (hostIp: (i: number) => string) => string[] {
  return (hostIp) => ['--insecure-registry', `${hostIp(index)}:${port}`];
}

export interface HostRegistry {
  /** "10.231.R.N:5000" */
  addr: string;
  pid: number;
  host: Host;
  /** config, storage and access log */
  dir: string;
  /** what it served so far, from its access log */
  traffic(): RegistryTraffic;
  /** SIGTERM by PID (SIGKILL after 5 s), then its storage goes */
  stop(): Promise<void>;
}

/** Starts a registry on `host` (inside its namespace, on its address) and waits until it answers there. */
export async function startHostRegistry(c: Cluster, host: Host, port = REGISTRY_PORT): Promise<HostRegistry> {
  const dir = join(c.workDir, `registry-${host.name}`);
  mkdirSync(dir, { recursive: true });
  const running = await startRegistry(dir, {}, { netns: host.netns, addr: `${host.ip}:${port}` });
  // The config file's path is in its command line: teardown checks it before it kills the PID.
  c.own(running.pid, dir);
  c.log(`registry on ${host.name} at ${running.addr} (pid ${running.pid}, ${REGISTRY_BIN})`);
  return {
    addr: running.addr, pid: running.pid, host, dir,
    traffic: () => registryTraffic(dir),
    stop: async () => {
      await running.stop();
      rmSync(join(dir, 'storage'), { recursive: true, force: true });
      c.log(`registry on ${host.name} stopped (pid ${running.pid})`);
    },
  };
}
