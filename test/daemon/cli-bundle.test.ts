/**
 * The CLI users run (bin/tsswarm: the esbuild bundle with built-in descriptors and codecs, from its
 * V8 code cache) against the unbundled CLI (dist/src/main.js: proto-loader parsing proto/*.proto)
 * on one real daemon: same output, same errors, same exit codes.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, daemonWithImage, REPO, runProcess, TestDaemon, type CliResult } from './harness.js';

const IMAGE = 'test/busybox:1';
const UNBUNDLED = join(REPO, 'dist/src/main.js');
let daemon: TestDaemon;
let scratch: string;

/** Runs bin/tsswarm as a shell would (its #! line) or the unbundled CLI with node. */
function run(which: 'bundled' | 'unbundled', args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  const cliArgs = ['-H', `unix://${daemon.socket}`, ...args];
  const [file, argv] = which === 'bundled' ? [CLI, cliArgs] : [process.execPath, [UNBUNDLED, ...cliArgs]];
  return runProcess(file, argv, { env });
}

async function both(args: string[]): Promise<[CliResult, CliResult]> {
  return [await run('bundled', args), await run('unbundled', args)];
}

let destroy: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ daemon, scratch, destroy } = await daemonWithImage('clib', IMAGE));
});

afterAll(async () => {
  await destroy?.();
});

describe('the bundled CLI', () => {
  it('reads every field of containers and images as the unbundled CLI does', async () => {
    await daemon.ok(['run', '-d', '--name', 'same', '-e', 'A=1', '-l', 'k=v', '-m', '64m', '--cpus', '0.5', '--pids-limit', '50',
      '--restart', 'on-failure:2', '-v', `${scratch}:/data:ro`, '-w', '/tmp', IMAGE, 'sleep', '60']);
    for (const args of [['container', 'inspect', 'same'], ['container', 'ps', '-a', '--format', 'json'], ['image', 'ls', '--format', 'json']]) {
      const [bundled, unbundled] = await both(args);
      expect(bundled.code, bundled.stderr).toBe(0);
      expect(JSON.parse(bundled.stdout)).toEqual(JSON.parse(unbundled.stdout));
    }
    const [bundled] = await both(['container', 'inspect', 'same']);
    const c = JSON.parse(bundled.stdout)[0];
    expect(c.spec).toMatchObject({ env: ['A=1'], labels: { k: 'v' }, memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pidsLimit: 50,
      restart: { name: 'on-failure', maxRetries: 2 }, mounts: [{ source: scratch, target: '/data', readOnly: true }], workingDir: '/tmp' });
  });

  it('fails as the unbundled CLI does: one line, the same exit code', async () => {
    for (const args of [['container', 'inspect', 'nosuch'], ['service', 'ls'], ['run', '--rm', '127.0.0.1:9/no/such:image', 'true'], ['run', '--memory', 'lots', IMAGE, 'true']]) {
      const [bundled, unbundled] = await both(args);
      expect(bundled.code).not.toBe(0);
      expect(bundled.code).toBe(unbundled.code);
      expect(bundled.stderr).toBe(unbundled.stderr);
      expect(bundled.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('streams run --rm output and passes the exit code through, with NODE_EXTRA_CA_CERTS dropped', async () => {
    // Set to a file that does not exist, node would warn on stderr that it cannot load it.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(scratch, 'no-such-ca.pem') };
    const r = await run('bundled', ['run', '--rm', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 5'], env);
    expect(r).toEqual({ code: 5, stdout: 'out\n', stderr: 'err\n' });
  });

  it('starts from the code cache the build made', async () => {
    const r = await new Promise<CliResult>((resolve) => {
      execFile(CLI, ['--version'], { encoding: 'utf8', env: { ...process.env, TSSWARM_DEBUG_CODE_CACHE: '1' } }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }));
    });
    expect(r).toEqual({ code: 0, stdout: '0.1.0\n', stderr: 'code cache: used\n' });
  });
});
