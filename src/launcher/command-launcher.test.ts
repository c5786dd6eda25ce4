/** The real native/build/tsswarm-launcher, driven as the daemon drives it. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, startCommandLauncher, stopCommandLauncher } from './command-launcher.js';
import { nativeDir } from '../engine/runtime/driver.js';

const LAUNCHER = join(nativeDir(), 'tsswarm-launcher');
const gone: string[] = [];

describe.skipIf(!existsSync(LAUNCHER))('tsswarm-launcher', () => {
  beforeAll(() => startCommandLauncher(LAUNCHER, (why) => gone.push(why)));
  afterAll(() => stopCommandLauncher());

  it('runs a command with input on stdin and returns its status and both outputs', async () => {
    const r = await runCommand('sh', ['-c', 'read a; read b; echo "got $a+$b"; echo oops >&2; exit 3'], 'x\ny\n');
    expect(r).toEqual({ code: 3, signal: null, stdout: 'got x+y\n', stderr: 'oops\n' });
  });

  it('keeps 200 commands in flight apart', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      runCommand('sh', ['-c', `sleep 0.0${i % 10}; echo ${i}; exit ${i % 7}`])));
    results.forEach((r, i) => expect(r).toMatchObject({ code: i % 7, stdout: `${i}\n` }));
  });

  it('reports a command killed by a signal, and one that cannot be started', async () => {
    expect(await runCommand('sh', ['-c', 'kill -KILL $$'])).toMatchObject({ code: null, signal: 'SIGKILL' });
    const missing = await runCommand('/nonexistent/tool', ['x']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/^cannot run \/nonexistent\/tool: No such file or directory/);
  });

  it('kills a command that outlives its timeout, and only that one', async () => {
    const t0 = Date.now();
    const [slow, quick] = await Promise.all([runCommand('sleep', ['10'], '', 200), runCommand('sh', ['-c', 'sleep 0.3; echo done'], '', 5000)]);
    expect(slow).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(quick).toMatchObject({ code: 0, stdout: 'done\n' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('carries large outputs and inputs whole, also to a command that stops reading', async () => {
    const big = 'z'.repeat(3 * 1024 * 1024);
    const echo = await runCommand('cat', [], big);
    expect(echo.code).toBe(0);
    expect(echo.stdout.length).toBe(big.length);
    expect(echo.stdout === big).toBe(true);
    // head exits after one line with most of the input unread: no hang, no error.
    expect(await runCommand('head', ['-c', '3'], big)).toMatchObject({ code: 0, stdout: 'zzz' });
  });

  it('when the launcher dies, its commands fail with the reason and later ones run from this process', async () => {
    const pid = Number((await runCommand('sh', ['-c', 'echo $PPID'])).stdout.trim());
    expect(pid).not.toBe(process.pid); // forked by the launcher, not by us
    const inFlight = runCommand('sleep', ['1']);
    process.kill(pid, 'SIGKILL');
    await expect(inFlight).rejects.toThrow(/tsswarm-launcher exited \(SIGKILL\) while running a command/);
    expect(gone).toEqual(['tsswarm-launcher exited (SIGKILL)']);
    const after = await runCommand('sh', ['-c', 'echo $PPID']);
    expect(Number(after.stdout.trim())).toBe(process.pid);
    expect(await runCommand('sleep', ['10'], '', 200)).toMatchObject({ code: null, signal: 'SIGKILL' });
  });
});
