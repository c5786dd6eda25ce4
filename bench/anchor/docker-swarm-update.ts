/**
 * The Docker Swarm side of bench:converge's rolling update, with the settings of ours (bench/converge.ts,
 * rollingUpdate): `replicas` tasks of `sleep 3600`, parallelism 10, --update-delay 0s, --update-monitor 1s,
 * --update-order stop-first, failure action pause with a max failure ratio of 0. Ours stops containers with
 * SIGKILL so that no grace period is measured; here the same: --stop-signal SIGKILL (--stop-grace-period 1s
 * is only the backstop dockerd waits before it kills anyway, never reached when SIGKILL is the stop signal).
 *
 * Ours changes the task template; here the template's image changes to a second tag of the same imported
 * rootfs (`docker tag`), pushed with --no-resolve-image so no registry is asked for a digest. The time runs
 * from the start of `docker service update` to UpdateStatus.State == "completed" with every one of the
 * `replicas` tasks running the new image, polled through the Engine API (no process per poll).
 */
import type { DockerEngine } from './docker-engine.js';
import { IMAGE, removeService, until } from './docker-swarm-converge.js';

const NEW_IMAGE = 'tswbd/busybox:2';
const SERVICE = 'upd';

export interface SwarmUpdate {
  seconds: number | null;
  /** Why there is no number (the update paused, timed out, the service never converged). */
  failed: string | null;
}

interface ServiceView { ID: string; UpdateStatus?: { State?: string; Message?: string } }
interface TaskView { Status: { State: string }; Spec: { ContainerSpec?: { Image?: string } } }

async function service(engine: DockerEngine): Promise<ServiceView> {
  return (await engine.api('GET', `/services/${SERVICE}`)) as ServiceView;
}

/** Tasks meant to run that do run, counted by the image their spec names. */
async function runningByImage(engine: DockerEngine): Promise<Map<string, number>> {
  const filters = encodeURIComponent(JSON.stringify({ service: [SERVICE], 'desired-state': ['running'] }));
  const tasks = (await engine.api('GET', `/tasks?filters=${filters}`)) as TaskView[];
  const counts = new Map<string, number>();
  for (const t of tasks) {
    if (t.Status.State !== 'running') continue;
    const image = t.Spec.ContainerSpec?.Image ?? '';
    counts.set(image, (counts.get(image) ?? 0) + 1);
  }
  return counts;
}

/** Runs on an engine that measureSwarmConverge started (swarm initialised, IMAGE imported); never throws. */
export async function measureSwarmUpdate(engine: DockerEngine, replicas: number): Promise<SwarmUpdate> {
  try {
    await engine.cli('service', 'create', '-d', '--no-resolve-image', '--name', SERVICE, '--replicas', String(replicas),
      '--stop-signal', 'SIGKILL', '--stop-grace-period', '1s',
      '--update-parallelism', '10', '--update-delay', '0s', '--update-monitor', '1s', '--update-order', 'stop-first',
      '--update-failure-action', 'pause', '--update-max-failure-ratio', '0',
      IMAGE, 'sleep', '3600');
    await until(`${replicas} running Docker tasks of ${SERVICE}`, async () => (await runningByImage(engine)).get(IMAGE) === replicas, 600_000);
    await engine.cli('tag', IMAGE, NEW_IMAGE);

    const t0 = performance.now();
    await engine.cli('service', 'update', '-d', '--no-resolve-image', '--image', NEW_IMAGE, SERVICE);
    await until('the Docker rolling update completed', async () => {
      const state = (await service(engine)).UpdateStatus;
      if (state?.State === 'paused' || state?.State?.startsWith('rollback')) {
        throw new Error(`the update ${state.State}: ${state.Message ?? ''}`);
      }
      return state?.State === 'completed' && (await runningByImage(engine)).get(NEW_IMAGE) === replicas;
    }, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`docker   rolling update of ${replicas} (parallelism 10)  ${seconds.toFixed(3)} s`);
    return { seconds: Math.round(seconds * 1000) / 1000, failed: null };
  } catch (err) {
    const failed = `failed: ${(err as Error).message.split('\n')[0]!.slice(0, 300)}`;
    console.log(`docker   rolling update of ${replicas}  ${failed}`);
    return { seconds: null, failed };
  } finally {
    await removeService(engine, SERVICE).catch((err) => console.log(`# Docker anchor: ${(err as Error).message}`));
  }
}
