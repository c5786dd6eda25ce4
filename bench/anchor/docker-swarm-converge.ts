/**
 * The Docker Swarm anchor of bench:converge: on a one-node swarm of a private Docker engine (see
 * docker-engine.ts), the time from `docker service create --replicas N` to N tasks Running, with the same
 * image (`docker import` of the same busybox rootfs) and command (`sleep 3600`) as our side.
 *
 * The service is created with the 20.10 CLI, as a user would; progress is polled through the Engine API
 * (GET /tasks, what `docker service ps` reads) so the poll costs no process per round on 2 shared cores.
 * --no-resolve-image keeps dockerd from asking a registry for a digest; --stop-grace-period 1s only shortens
 * the removal between sizes (busybox sleep as PID 1 ignores SIGTERM), not the measured start.
 */
import { ADVERTISE_ADDR, DockerEngine, ensureDockerInstalled, type EngineRss } from './docker-engine.js';

export const IMAGE = 'tswbd/busybox:1';
/** A size over 100 is skipped when the rate at the largest size so far says it would take longer than this
 *  (N = 1, 10 and 100 are always measured: the ratio is taken at 100, and small sizes are latency-bound). */
const SKIP_OVER_S = 100;
const ALWAYS_UP_TO = 100;

export interface SwarmConverge {
  /** "measured", or "absent: <why>" when no engine could be started here. */
  docker: string;
  seconds: Record<string, number>;
  /** Sizes not measured, with the reason (too slow, timed out). */
  skipped: Record<string, string>;
  rssAt100: EngineRss | null;
  version: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runningTasks(engine: DockerEngine, service: string): Promise<number> {
  const filters = encodeURIComponent(JSON.stringify({ service: [service], 'desired-state': ['running'] }));
  const tasks = (await engine.api('GET', `/tasks?filters=${filters}`)) as { Status: { State: string } }[];
  return tasks.filter((t) => t.Status.State === 'running').length;
}

async function serviceContainers(engine: DockerEngine, service: string): Promise<number> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.name=${service}`] }));
  return ((await engine.api('GET', `/containers/json?all=1&filters=${filters}`)) as unknown[]).length;
}

export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Measures each size in turn; `engine` is stopped by the caller (so a signal handler can stop it too).
 * Never throws for an engine that cannot start: that is reported as absent.
 */
export async function measureSwarmConverge(engine: DockerEngine, sizes: number[], rootfsTar: string): Promise<SwarmConverge> {
  const out: SwarmConverge = { docker: 'measured', seconds: {}, skipped: {}, rssAt100: null, version: null };
  const notInstalled = ensureDockerInstalled();
  if (notInstalled) return { ...out, docker: `absent: ${notInstalled}` };
  try {
    await engine.start();
    await engine.cli('import', rootfsTar, IMAGE);
    await engine.cli('swarm', 'init', '--advertise-addr', ADVERTISE_ADDR, '--listen-addr', `${ADVERTISE_ADDR}:2377`);
  } catch (err) {
    return { ...out, docker: `absent: ${((err as Error).message.split('\n')[0] ?? '').slice(0, 300)}` };
  }
  out.version = ((await engine.api('GET', '/version')) as { Version: string }).Version;
  console.log(`# Docker Swarm anchor: dockerd ${out.version} in network namespace ${engine.netns}`);

  let rate = 0; // tasks/s at the largest size measured so far
  for (const n of sizes) {
    const label = `docker   N=${String(n).padStart(4)}`;
    if (n > ALWAYS_UP_TO && rate > 0 && n / rate > SKIP_OVER_S) {
      out.skipped[String(n)] = `skipped: ${n} tasks at ${rate.toFixed(1)} tasks/s would take ~${Math.round(n / rate)} s (> ${SKIP_OVER_S} s)`;
      console.log(`${label}  ${out.skipped[String(n)]}`);
      continue;
    }
    try {
      const seconds = await convergeOnce(engine, n, n > ALWAYS_UP_TO && rate > 0 ? Math.max(60_000, (n / rate) * 1500) : 300_000);
      out.seconds[String(n)] = Math.round(seconds * 1000) / 1000;
      rate = n / seconds;
      console.log(`${label}  ${seconds.toFixed(3)} s  (${rate.toFixed(1)} tasks/s)`);
      if (n === 100) out.rssAt100 = engine.rss();
    } catch (err) {
      // The engine is in an unknown state: report this size and stop measuring rather than lose the run.
      out.skipped[String(n)] = `failed: ${(err as Error).message}`;
      console.log(`${label}  ${out.skipped[String(n)]}`);
      break;
    } finally {
      await removeService(engine, `conv${n}`).catch((err) => console.log(`# Docker anchor: ${(err as Error).message}`));
    }
  }
  if (Object.keys(out.seconds).length === 0 && Object.keys(out.skipped).length > 0) {
    out.docker = `absent: engine started but no size converged (${Object.values(out.skipped)[0]})`;
  }
  return out;
}

/** Seconds from `docker service create --replicas n` to n tasks running. */
async function convergeOnce(engine: DockerEngine, n: number, timeoutMs: number): Promise<number> {
  const name = `conv${n}`;
  const t0 = performance.now();
  await engine.cli('service', 'create', '-d', '--no-resolve-image', '--stop-grace-period', '1s', '--replicas', String(n),
    '--name', name, IMAGE, 'sleep', '3600');
  await until(`${n} running Docker tasks`, async () => (await runningTasks(engine, name)) === n, timeoutMs);
  return (performance.now() - t0) / 1000;
}

export async function removeService(engine: DockerEngine, name: string): Promise<void> {
  const filters = encodeURIComponent(JSON.stringify({ name: [name] }));
  const services = (await engine.api('GET', `/services?filters=${filters}`)) as { ID: string; Spec: { Name: string } }[];
  const service = services.find((s) => s.Spec.Name === name);
  if (!service) return;
  await engine.api('DELETE', `/services/${service.ID}`);
  await until(`the containers of ${name} gone`, async () => (await serviceContainers(engine, name)) === 0, 300_000);
}
