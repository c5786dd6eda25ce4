/**
 * `tsswarm image push|pull|tag|inspect`, `login|logout` and `run`'s pull, through the CLI and a real
 * daemon, against Debian's docker-registry on loopback (one open, one behind htpasswd).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { htpasswdFile, startRegistry, type RunningRegistry } from '../../testkit/registry.js';
import { busyboxTarball, tempDir, TestDaemon } from './harness.js';

let scratch: string;
let daemon: TestDaemon;
let open: RunningRegistry;
let locked: RunningRegistry;

beforeAll(async () => {
  scratch = tempDir('registry');
  mkdirSync(join(scratch, 'open'));
  mkdirSync(join(scratch, 'locked'));
  open = await startRegistry(join(scratch, 'open'));
  locked = await startRegistry(join(scratch, 'locked'), { htpasswd: htpasswdFile(join(scratch, 'htpasswd'), 'alice', 's3cret') });
  daemon = new TestDaemon('registry', 'tsswarm', ['--registry-config', join(scratch, 'config')]);
  await daemon.start();
  await daemon.ok(['image', 'import', await busyboxTarball(scratch), 'demo/busybox:latest']);
}, 120_000);

afterAll(async () => {
  await daemon?.destroy();
  await open?.stop();
  await locked?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('images through a registry', () => {
  it('pushes a tagged image, and pulls it back by tag and by the digest push printed', async () => {
    const ref = `${open.addr}/shop/web:1.4`;
    await daemon.ok(['image', 'tag', 'demo/busybox:latest', ref]);
    const pushed = await daemon.ok(['image', 'push', ref]);
    expect(pushed).toContain(`The push refers to repository [${open.addr}/shop/web]`);
    const digest = /1\.4: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(pushed)?.[1];
    expect(digest).toBeDefined();

    await daemon.ok(['image', 'rm', ref, 'demo/busybox:latest']);
    expect((await daemon.cli(['image', 'inspect', ref])).code).not.toBe(0);
    const pulled = await daemon.ok(['pull', ref]);
    expect(pulled).toContain(`Digest: ${digest}`);
    expect(pulled).toContain(`Status: Downloaded newer image for ${ref}`);
    const [inspected] = JSON.parse(await daemon.ok(['image', 'inspect', ref])) as { RepoDigests: string[] }[];
    expect(inspected!.RepoDigests).toContain(`${open.addr}/shop/web@${digest}`);

    const again = await daemon.ok(['image', 'pull', ref]);
    expect(again).toContain(`Status: Image is up to date for ${ref}`);
    expect((await daemon.ok(['image', 'pull', '-q', `${open.addr}/shop/web@${digest}`])).trim()).toBe(`${open.addr}/shop/web@${digest}`);
  });

  it('run pulls a missing image first, as docker run does; --pull never refuses with 125', async () => {
    const ref = `${open.addr}/shop/run:1`;
    await daemon.ok(['image', 'tag', `${open.addr}/shop/web:1.4`, ref]);
    await daemon.ok(['image', 'push', ref]);
    await daemon.ok(['image', 'rm', ref]);
    const never = await daemon.cli(['run', '--rm', '--pull', 'never', ref, 'true']);
    expect(never.code).toBe(125);
    expect(never.stderr).toMatch(/No such image/);
    const run = await daemon.cli(['run', '--rm', ref, 'echo', 'hello from the registry']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('hello from the registry\n');
    expect(run.stderr).toContain(`Unable to find image '${ref}' locally`);
    expect(run.stderr).toMatch(/Status: Downloaded newer image/);
  });

  it('says in one line which image a registry does not have', async () => {
    const r = await daemon.cli(['image', 'pull', `${open.addr}/shop/nothing:9`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/No such image: .*shop\/nothing:9/);
  });

  it('login refuses a wrong password, keeps a right one in a 0600 file, and a private pull then works', async () => {
    const ref = `${locked.addr}/team/app:2`;
    const { Id } = (JSON.parse(await daemon.ok(['image', 'inspect', `${open.addr}/shop/web:1.4`])) as { Id: string }[])[0]!;
    await daemon.ok(['image', 'tag', Id, ref]);
    const anonymous = await daemon.cli(['image', 'push', ref]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/unauthorized/);

    const wrong = await daemon.cli(['login', '-u', 'alice', '-p', 'nope', locked.addr]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/unauthorized: incorrect username or password/);

    expect(await daemon.ok(['login', '-u', 'alice', '-p', 's3cret', locked.addr])).toBe('Login Succeeded\n');
    const file = join(scratch, 'config', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { auths: object }).auths)).toEqual([locked.addr]);

    await daemon.ok(['image', 'push', ref]);
    await daemon.ok(['image', 'rm', ref]);
    expect(await daemon.ok(['image', 'pull', ref])).toMatch(/Downloaded newer image/);

    expect(await daemon.ok(['logout', locked.addr])).toBe(`Removing login credentials for ${locked.addr}\n`);
    await daemon.ok(['image', 'rm', ref]);
    const after = await daemon.cli(['image', 'pull', ref]);
    expect(after.code).not.toBe(0);
    expect(after.stderr).toMatch(/unauthorized/);
  });

  it('saves images as docker and OCI archives that skopeo reads and image load restores', async () => {
    const ref = `${open.addr}/shop/web:1.4`;
    const dockerTar = join(scratch, 'saved-docker.tar');
    const ociTar = join(scratch, 'saved-oci.tar');
    await daemon.ok(['image', 'save', '-o', dockerTar, ref]);
    await daemon.ok(['image', 'save', '--format', 'oci', '-o', ociTar, ref]);
    const { Id, RootFS } = (JSON.parse(await daemon.ok(['image', 'inspect', ref])) as { Id: string; RootFS: { Layers: string[] } }[])[0]!;
    const fromDocker = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${dockerTar}`], { encoding: 'utf8' })) as { rootfs: { diff_ids: string[] } };
    const fromOci = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci-archive:${ociTar}:1.4`], { encoding: 'utf8' })) as { rootfs: { diff_ids: string[] } };
    expect(fromDocker.rootfs.diff_ids).toEqual(RootFS.Layers);
    expect(fromOci.rootfs.diff_ids).toEqual(RootFS.Layers);

    await daemon.ok(['image', 'rm', '-f', Id]);
    expect(await daemon.ok(['image', 'load', '-i', dockerTar])).toBe(`Loaded image: ${ref}\n`);
    expect((await daemon.ok(['run', '--rm', '--pull', 'never', ref, 'echo', 'restored'])).trim()).toBe('restored');
    const bad = await daemon.cli(['image', 'save', '-o', join(scratch, 'x.tar'), 'no/such:image']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/No such image: no\/such:image/);
  });

  it('history shows how an image was made; prune removes untagged images, and with -a every image no container uses', async () => {
    const history = JSON.parse(await daemon.ok(['image', 'history', '--format', 'json', `${open.addr}/shop/web:1.4`])) as { createdBy: string; size: number }[];
    expect(history[0]!.createdBy).toBe('tsswarm image import');
    expect(history[0]!.size).toBeGreaterThan(100_000);

    await daemon.ok(['image', 'tag', `${open.addr}/shop/web:1.4`, 'keep/me:1']);
    const running = (await daemon.ok(['run', '-d', 'keep/me:1', 'sleep', '60'])).trim();
    await daemon.ok(['image', 'tag', `${open.addr}/shop/web:1.4`, 'spare/copy:1']);
    expect(await daemon.ok(['image', 'prune'])).toBe('');
    const all = await daemon.ok(['image', 'prune', '-a']);
    // One image holds every tag here, and a container uses it: nothing may go.
    expect(all).toBe('');
    await daemon.ok(['rm', '-f', running]);
    const pruned = await daemon.ok(['image', 'prune', '-a']);
    expect(pruned).toMatch(/^Deleted Images:\n/);
    expect(pruned).toContain('untagged: keep/me:1');
    expect(JSON.parse(await daemon.ok(['image', 'ls', '--format', 'json']))).toEqual([]);
  });
});
