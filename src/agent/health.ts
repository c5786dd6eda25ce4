/**
 * Health checks of a task's container, run by the worker as docker runs them: the check command is
 * executed inside the container every `interval`; a run that exits 0 makes the container healthy,
 * `retries` failures in a row (a run longer than `timeout` fails) make it unhealthy, and failures
 * during `startPeriod` do not count until a first success. The task executor reports the health
 * with the task's status; an unhealthy task is failed (and the orchestrator replaces it).
 */

export type Health = 'starting' | 'healthy' | 'unhealthy';

export interface HealthCheckConfig {
  /** ["CMD", args...] | ["CMD-SHELL", command] | ["NONE"] */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** The image config's form (durations in nanoseconds, as docker stores them). */
export interface ImageHealthcheck { test: string[]; interval?: number; timeout?: number; retries?: number; startPeriod?: number }

const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;

/**
 * The check that applies to a task: its own (the service's --health-* flags), else the image's
 * HEALTHCHECK; none when either says NONE (--no-healthcheck) or neither has one. Zero means default.
 */
export function effectiveHealthcheck(task: Partial<HealthCheckConfig> | undefined, image: ImageHealthcheck | undefined): HealthCheckConfig | undefined {
  const fromImage = image && image.test?.length ? {
    test: image.test,
    intervalMs: (image.interval ?? 0) / 1e6, timeoutMs: (image.timeout ?? 0) / 1e6,
    retries: image.retries ?? 0, startPeriodMs: (image.startPeriod ?? 0) / 1e6,
  } : undefined;
  const chosen = task?.test?.length ? task as HealthCheckConfig : fromImage;
  if (!chosen || chosen.test[0] === 'NONE') return undefined;
  return {
    test: chosen.test,
    intervalMs: chosen.intervalMs || DEFAULT_INTERVAL_MS,
    timeoutMs: chosen.timeoutMs || DEFAULT_TIMEOUT_MS,
    retries: chosen.retries || DEFAULT_RETRIES,
    startPeriodMs: chosen.startPeriodMs || 0,
  };
}

/** The argv to exec for a check's test. */
export function checkCommand(test: string[]): string[] {
  if (test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', test.slice(1).join(' ')];
  if (test[0] === 'CMD') return test.slice(1);
  return test; // a bare command, as some images spell it
}

/** Runs a check's command in the task's container: true when it exited 0 within `timeoutMs`. */
export type RunCheck = (cmd: string[], timeoutMs: number) => Promise<boolean>;

export class HealthMonitor {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private streak = 0;
  private health: Health;
  private readonly startedAt: number;

  constructor(
    private readonly config: HealthCheckConfig,
    private readonly runCheck: RunCheck,
    private readonly onChange: (health: Health) => void,
    startedAt = Date.now(),
    /** Where checking starts: `healthy` for a container adopted after a daemon restart that was. */
    initial: Health = 'starting',
  ) {
    this.startedAt = startedAt;
    this.health = initial;
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  current(): Health {
    return this.health;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check(), this.config.intervalMs);
  }

  private async check(): Promise<void> {
    const ok = await this.runCheck(checkCommand(this.config.test), this.config.timeoutMs).catch(() => false);
    if (this.stopped) return;
    if (ok) {
      this.streak = 0;
      this.set('healthy');
    } else if (!(this.health === 'starting' && Date.now() - this.startedAt < this.config.startPeriodMs)) {
      this.streak++;
      if (this.streak >= this.config.retries) this.set('unhealthy');
    }
    if (this.health !== 'unhealthy') this.schedule();
  }

  private set(h: Health): void {
    if (h === this.health) return;
    this.health = h;
    this.onChange(h);
  }
}
