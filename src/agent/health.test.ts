import { describe, expect, it } from 'vitest';
import { checkCommand, effectiveHealthcheck, HealthMonitor, type Health } from './health.js';

/** A check that answers `code` after `ms`; a hung one fails once its timeout is up, as the launcher kills it then. */
function fakeCheck(code: number | 'hang', ms = 1) {
  return (_cmd: string[], timeoutMs: number) =>
    new Promise<boolean>((resolve) => setTimeout(() => resolve(code === 0), code === 'hang' ? timeoutMs : ms));
}

async function run(results: (number | 'hang')[], config: Partial<Parameters<typeof effectiveHealthcheck>[0]>, ms: number, initial?: Health): Promise<Health[]> {
  const seen: Health[] = [];
  let i = 0;
  const monitor = new HealthMonitor(
    effectiveHealthcheck({ test: ['CMD', 'check'], ...config }, undefined)!,
    (cmd, timeoutMs) => fakeCheck(results[Math.min(i++, results.length - 1)]!)(cmd, timeoutMs),
    (h) => seen.push(h),
    Date.now(),
    initial,
  );
  monitor.start();
  await new Promise((r) => setTimeout(r, ms));
  monitor.stop();
  return seen;
}

describe('health checks', () => {
  it('the task\'s check wins over the image\'s; NONE disables; zero means docker\'s defaults', () => {
    const image = { test: ['CMD-SHELL', 'true'], interval: 2e9, retries: 4 };
    expect(effectiveHealthcheck(undefined, image)).toEqual({ test: ['CMD-SHELL', 'true'], intervalMs: 2000, timeoutMs: 30_000, retries: 4, startPeriodMs: 0 });
    expect(effectiveHealthcheck({ test: ['CMD', 'x'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 }, image)?.test).toEqual(['CMD', 'x']);
    expect(effectiveHealthcheck({ test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 }, image)).toBeUndefined();
    expect(effectiveHealthcheck({ test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 }, undefined)).toBeUndefined();
    expect(checkCommand(['CMD-SHELL', 'test -f /x'])).toEqual(['/bin/sh', '-c', 'test -f /x']);
    expect(checkCommand(['CMD', 'wget', '-q', 'url'])).toEqual(['wget', '-q', 'url']);
  });

  it('healthy on a passing check; unhealthy after `retries` failures in a row', async () => {
    expect(await run([0], { intervalMs: 10 }, 60)).toEqual(['healthy']);
    expect(await run([0, 1, 0, 1, 1, 1], { intervalMs: 10, retries: 3 }, 200)).toEqual(['healthy', 'unhealthy']);
  });

  it('a container adopted healthy after a daemon restart stays healthy until its checks fail `retries` times', async () => {
    expect(await run([0], { intervalMs: 10 }, 60, 'healthy')).toEqual([]);
    expect(await run([1, 1], { intervalMs: 10, retries: 2, startPeriodMs: 10_000 }, 100, 'healthy')).toEqual(['unhealthy']);
  });

  it('a check that outlives its timeout fails', async () => {
    expect(await run(['hang'], { intervalMs: 10, timeoutMs: 20, retries: 2 }, 200)).toEqual(['unhealthy']);
  });

  it('failures during the start period do not count', async () => {
    expect(await run([1, 1, 1, 1, 0], { intervalMs: 10, retries: 1, startPeriodMs: 10_000 }, 150)).toEqual(['healthy']);
    expect(await run([1], { intervalMs: 10, retries: 1, startPeriodMs: 0 }, 60)).toEqual(['unhealthy']);
  });
});
