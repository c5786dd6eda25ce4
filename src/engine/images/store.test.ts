import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ImageError, ImageStore } from './index.js';
import { busyboxRootfs, makeTempDir, removeTempDir, sh, tarDir, writeOciLayout } from '../../../testkit/images.js';

let shared: string; // built once per file: the busybox rootfs and an extracted copy of it
let busyboxTar: string;
let work: string; // per test
let root: string;

beforeAll(() => {
  shared = makeTempDir();
  busyboxTar = busyboxRootfs(join(shared, 'busybox.tar'));
});
afterAll(() => removeTempDir(shared));
beforeEach(() => {
  work = makeTempDir();
  root = join(work, 'images');
});
afterEach(() => removeTempDir(work));

function layerEntries(store: ImageStore): string[] {
  return readdirSync(join(store.root, 'layers')).sort();
}

describe('importRootfs', () => {
  test('unpacks the busybox rootfs with files, symlinks and modes', async () => {
    const store = await ImageStore.open(root);
    const img = await store.importRootfs(busyboxTar, 'busybox');
    expect(img.refs).toEqual(['busybox:latest']);
    expect(img.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(img.layers).toHaveLength(1);
    expect(img.config.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(img.config.cmd).toBeNull();
    expect(img.size).toBeGreaterThan(500_000);

    const [layer] = store.lowerDirs(img);
    expect(layer).toBeDefined();
    const dir = layer!;
    const bb = lstatSync(join(dir, 'bin/busybox'));
    expect(bb.isFile()).toBe(true);
    expect(bb.mode & 0o7777).toBe(0o755);
    expect(bb.uid).toBe(0);
    expect(lstatSync(join(dir, 'bin/sh')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'bin/sh'))).toBe('busybox');
    expect(lstatSync(join(dir, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(readFileSync(join(dir, 'etc/image-marker'), 'utf8')).toBe('tsswarm-test-image\n');
    // The binary runs from the unpacked layer.
    expect(sh(join(dir, 'bin/busybox'), ['echo', 'hi']).trim()).toBe('hi');
  });

  test('resolves by name, name:tag, full id and short id', async () => {
    const store = await ImageStore.open(root);
    const img = await store.importRootfs(busyboxTar, 'demo/busybox:1.0');
    const hex = img.id.slice('sha256:'.length);
    for (const key of ['demo/busybox:1.0', 'docker.io/demo/busybox:1.0', img.id, hex, hex.slice(0, 12), `sha256:${hex.slice(0, 12)}`]) {
      expect(store.resolve(key)?.id, key).toBe(img.id);
    }
    expect(store.resolve('demo/busybox')).toBeUndefined(); // :latest is another tag
    expect(store.resolve(hex.slice(0, 11))).toBeUndefined();
    expect(store.list().map((i) => i.id)).toEqual([img.id]);
  });

  test('a gzipped rootfs gives the same layer, stored once', async () => {
    const store = await ImageStore.open(root);
    const plain = await store.importRootfs(busyboxTar, 'plain', { config: { cmd: ['/bin/sh'], workingDir: '/tmp' } });
    execFileSync('sh', ['-c', `gzip -c ${busyboxTar} > ${work}/bb.tar.gz`]);
    const gz = await store.importRootfs(join(work, 'bb.tar.gz'), 'gz', { config: { env: ['FOO=1'] } });
    expect(gz.config.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'FOO=1']);
    expect(gz.layers).toEqual(plain.layers);
    expect(plain.config.cmd).toEqual(['/bin/sh']);
    expect(plain.config.workingDir).toBe('/tmp');
    expect(layerEntries(store)).toHaveLength(1);
  });

  test('bad input gets one clear line', async () => {
    const store = await ImageStore.open(root);
    const missing = join(work, 'missing.tar');
    await expect(store.importRootfs(missing, 'x')).rejects.toThrow(new ImageError(`${missing}: no such file`));
    writeFileSync(join(work, 'empty.tar'), '');
    await expect(store.importRootfs(join(work, 'empty.tar'), 'x')).rejects.toThrow(/empty\.tar: empty file \(not a tar archive\)$/);
    writeFileSync(join(work, 'notes.txt'), 'hello, not a tar archive\n'.repeat(40));
    await expect(store.importRootfs(join(work, 'notes.txt'), 'x')).rejects.toThrow(/notes\.txt: .*not a tar archive/);
    await expect(store.importRootfs(busyboxTar, 'Bad:Tag!')).rejects.toThrow(/invalid reference "Bad:Tag!"/);
    for (const bad of [missing, join(work, 'notes.txt')]) {
      const err = await store.importRootfs(bad, 'x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImageError);
      expect((err as Error).message).not.toContain('\n');
    }
    expect(store.list()).toEqual([]);
    expect(layerEntries(store)).toEqual([]);
    expect(readdirSync(join(root, 'blobs/sha256'))).toEqual([]);
  });
});

describe('load', () => {
  let rootfsDir: string;
  beforeAll(() => {
    rootfsDir = join(shared, 'rootfs');
    mkdirSync(rootfsDir, { recursive: true });
    sh('tar', ['-C', rootfsDir, '-xpf', busyboxTar]);
  });

  /** An OCI layout made by umoci from the busybox rootfs, with a config. */
  function umociLayout(dir: string): string {
    sh('umoci', ['init', '--layout', dir]);
    sh('umoci', ['new', '--image', `${dir}:latest`]);
    sh('umoci', ['insert', '--image', `${dir}:latest`, rootfsDir, '/']);
    sh('umoci', ['config', '--image', `${dir}:latest`,
      '--config.env', 'FOO=bar', '--config.entrypoint', '/bin/sh', '--config.cmd', '-c', '--config.cmd', 'echo hi',
      '--config.workingdir', '/tmp', '--config.user', '65534:65534', '--config.exposedports', '8080/tcp',
      '--config.label', 'org.example=yes', '--config.stopsignal', 'SIGQUIT']);
    return dir;
  }

  test('an OCI layout made by umoci, as a directory and as a tar', async () => {
    const layout = umociLayout(join(work, 'bb-oci'));
    const store = await ImageStore.open(root);
    const [img] = await store.load(layout);
    expect(img).toBeDefined();
    expect(img!.refs).toEqual(['bb-oci:latest']);
    expect(img!.config).toMatchObject({
      entrypoint: ['/bin/sh'], cmd: ['-c', 'echo hi'], workingDir: '/tmp', user: '65534:65534',
      exposedPorts: ['8080/tcp'], labels: { 'org.example': 'yes' }, stopSignal: 'SIGQUIT',
    });
    expect(img!.config.env).toContain('FOO=bar');
    const [dir] = store.lowerDirs(img!);
    expect(readlinkSync(join(dir!, 'bin/sh'))).toBe('busybox');
    expect(readFileSync(join(dir!, 'etc/image-marker'), 'utf8')).toBe('tsswarm-test-image\n');

    const tarFile = join(work, 'other.tar');
    sh('tar', ['-C', layout, '-cf', tarFile, '.']);
    const [again] = await store.load(tarFile, { name: 'demo/bb' });
    expect(again!.id).toBe(img!.id);
    expect(store.resolve('bb-oci')?.refs.sort()).toEqual(['bb-oci:latest', 'demo/bb:latest']);
    expect(layerEntries(store)).toHaveLength(1);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  test('a docker-save archive written by skopeo', async () => {
    const layout = umociLayout(join(work, 'src-oci'));
    const archive = join(work, 'bb-docker.tar');
    sh('skopeo', ['copy', '--quiet', `oci:${layout}:latest`, `docker-archive:${archive}:demo/busybox:1.36`]);
    const store = await ImageStore.open(root);
    const [img] = await store.load(archive);
    expect(img!.refs).toEqual(['demo/busybox:1.36']);
    expect(img!.config.entrypoint).toEqual(['/bin/sh']);
    expect(img!.config.user).toBe('65534:65534');
    const [dir] = store.lowerDirs(img!);
    expect(lstatSync(join(dir!, 'bin/busybox')).mode & 0o777).toBe(0o755);
  });

  test('whiteouts and opaque dirs work in a real overlay mount', async () => {
    const l1 = join(work, 'l1');
    mkdirSync(join(l1, 'etc/conf.d'), { recursive: true });
    writeFileSync(join(l1, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\n');
    writeFileSync(join(l1, 'etc/keep'), 'kept\n');
    writeFileSync(join(l1, 'etc/conf.d/old'), 'old\n');
    const l2 = join(work, 'l2');
    mkdirSync(join(l2, 'etc/conf.d'), { recursive: true });
    writeFileSync(join(l2, 'etc/.wh.passwd'), '');
    writeFileSync(join(l2, 'etc/conf.d/.wh..wh..opq'), '');
    writeFileSync(join(l2, 'etc/conf.d/new'), 'new\n');
    const layout = join(work, 'two-layers');
    writeOciLayout(layout, [{ file: tarDir(l1, join(work, 'l1.tar')) }, { file: tarDir(l2, join(work, 'l2.tgz'), true) }]);

    const store = await ImageStore.open(root);
    const [img] = await store.load(layout);
    const lower = store.lowerDirs(img!);
    expect(lower).toHaveLength(2);
    const whiteout = lstatSync(join(lower[0]!, 'etc/passwd'));
    expect(whiteout.isCharacterDevice()).toBe(true);
    expect(whiteout.rdev).toBe(0);
    expect(existsSync(join(lower[0]!, 'etc/conf.d/.wh..wh..opq'))).toBe(false);

    const mnt = join(work, 'mnt');
    mkdirSync(mnt);
    sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')}`, mnt]);
    try {
      expect(existsSync(join(mnt, 'etc/passwd'))).toBe(false);
      expect(readFileSync(join(mnt, 'etc/keep'), 'utf8')).toBe('kept\n');
      expect(readdirSync(join(mnt, 'etc/conf.d'))).toEqual(['new']);
    } finally {
      sh('umount', [mnt]);
    }
  });

  test('a corrupt layer blob is refused and leaves nothing behind', async () => {
    const l1 = join(work, 'l1');
    mkdirSync(l1);
    writeFileSync(join(l1, 'file'), 'content\n'.repeat(1000));
    const layout = join(work, 'corrupt');
    const { layerDigests } = writeOciLayout(layout, [{ file: tarDir(l1, join(work, 'l1.tar')) }]);
    const blob = join(layout, 'blobs/sha256', layerDigests[0]!.slice(7));
    const bytes = readFileSync(blob);
    bytes[2000] = bytes[2000]! ^ 0xff;
    writeFileSync(blob, bytes);

    const store = await ImageStore.open(root);
    const err = await store.load(layout).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as Error).message).toMatch(new RegExp(`^layer ${layerDigests[0]!.slice(0, 19)}…: digest mismatch \\(got sha256:[0-9a-f]{12}…\\)$`));
    expect(store.list()).toEqual([]);
    expect(layerEntries(store)).toEqual([]);
    expect(readdirSync(join(root, 'blobs/sha256'))).toEqual([]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  test('a layer that does not match its diff_id is refused', async () => {
    const l1 = join(work, 'l1');
    mkdirSync(l1);
    writeFileSync(join(l1, 'file'), 'x');
    const layout = join(work, 'wrong-diffid');
    const wrong = `sha256:${'ab'.repeat(32)}`;
    writeOciLayout(layout, [{ file: tarDir(l1, join(work, 'l1.tgz'), true) }], { diffIds: [wrong] });
    const store = await ImageStore.open(root);
    await expect(store.load(layout)).rejects.toThrow(/^layer sha256:abababababab…: digest mismatch \(got sha256:[0-9a-f]{12}…\)$/);
    expect(layerEntries(store)).toEqual([]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  test('unknown formats and missing files are refused clearly', async () => {
    const store = await ImageStore.open(root);
    await expect(store.load(join(work, 'nope.tar'))).rejects.toThrow(/nope\.tar: no such file or directory$/);
    writeFileSync(join(work, 'text'), 'just text\n'.repeat(100));
    await expect(store.load(join(work, 'text'))).rejects.toThrow(/text: not a tar archive or image directory$/);
    mkdirSync(join(work, 'random'));
    writeFileSync(join(work, 'random/a'), 'a');
    await expect(store.load(join(work, 'random'))).rejects.toThrow(/random: unknown image format/);
    await expect(store.load(tarDir(join(work, 'random'), join(work, 'random.tar')))).rejects.toThrow(/random\.tar: unknown image format/);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });
});

describe('unsafe layers', () => {
  async function importExpectingError(tarFile: string, pattern: RegExp): Promise<void> {
    const store = await ImageStore.open(root);
    await expect(store.importRootfs(tarFile, 'evil')).rejects.toThrow(pattern);
    expect(layerEntries(store)).toEqual([]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  }

  test('a member with ".." is refused', async () => {
    mkdirSync(join(work, 'src'));
    writeFileSync(join(work, 'src/evil'), 'x');
    const t = join(work, 'dotdot.tar');
    sh('tar', ['-C', join(work, 'src'), '-P', '--transform', 's,^evil,../evil,', '-cf', t, 'evil']);
    await importExpectingError(t, /member "\.\.\/evil" escapes the layer/);
  });

  test('an absolute member is refused', async () => {
    mkdirSync(join(work, 'src'));
    writeFileSync(join(work, 'src/evil'), 'x');
    const t = join(work, 'abs.tar');
    sh('tar', ['-C', join(work, 'src'), '-P', '--transform', 's,^evil,/tmp/evil,', '-cf', t, 'evil']);
    await importExpectingError(t, /member "\/tmp\/evil" has an absolute path/);
  });

  test('a member below a symlink of the same layer is refused', async () => {
    const target = join(work, 'outside');
    mkdirSync(target);
    mkdirSync(join(work, 'src/b'), { recursive: true });
    symlinkSync(target, join(work, 'src/a'));
    writeFileSync(join(work, 'src/b/x'), 'x');
    const t = join(work, 'symlink.tar');
    sh('tar', ['-C', join(work, 'src'), '-cf', t, 'a']);
    sh('tar', ['-C', join(work, 'src'), '--transform', 's,^b/,a/,', '-rf', t, 'b/x']);
    await importExpectingError(t, /member "a\/x" lies below symlink "a"/);
    expect(readdirSync(target)).toEqual([]);
  });
});

describe('remove and reopen', () => {
  /** Two images sharing the busybox base layer, each with a layer of its own. */
  async function twoImages(store: ImageStore): Promise<void> {
    for (const name of ['one', 'two']) {
      const top = join(work, `top-${name}`);
      mkdirSync(top);
      writeFileSync(join(top, name), name);
      const layout = join(work, name);
      writeOciLayout(layout, [{ file: busyboxTar }, { file: tarDir(top, join(work, `${name}.tar`)) }], { tag: 'v1', config: { Env: [`NAME=${name}`] } });
      await store.load(layout);
    }
  }

  test('untags, deletes unshared layers and keeps shared ones', async () => {
    const store = await ImageStore.open(root);
    await twoImages(store);
    expect(layerEntries(store)).toHaveLength(3);
    const one = store.resolve('one:v1')!;
    const two = store.resolve('two:v1')!;
    expect(one.layers[0]).toBe(two.layers[0]);

    await expect(store.remove('nothere:latest')).rejects.toThrow(new ImageError('no such image: nothere:latest'));
    await expect(store.remove('one:v1', { inUse: (id) => id === one.id })).rejects.toThrow(/is in use by a container/);

    // A second tag: removing the first only untags.
    await store.load(join(work, 'one'), { name: 'alias' });
    expect(await store.remove('one:v1')).toEqual({ untagged: ['one:v1'], deleted: [] });
    expect(store.resolve(one.id)?.refs).toEqual(['alias:v1']);

    const removed = await store.remove('alias:v1');
    expect(removed.untagged).toEqual(['alias:v1']);
    expect(removed.deleted).toEqual([one.id, one.layers[1]]);
    expect(store.resolve(one.id)).toBeUndefined();
    expect(layerEntries(store)).toEqual(two.layers.map((l) => l.slice(7)).sort());
    const [sharedDir] = store.lowerDirs(two).slice(-1);
    expect(existsSync(join(sharedDir!, 'bin/busybox'))).toBe(true);

    // In use, by id, with force: untagged but kept, since a container's mount uses its layers.
    await expect(store.remove(two.id, { inUse: () => true })).rejects.toThrow(/is in use by a container/);
    expect(await store.remove(two.id.slice(7, 19), { force: true, inUse: () => true })).toEqual({ untagged: ['two:v1'], deleted: [] });
    expect(store.resolve(two.id)?.refs).toEqual([]);
    expect(await store.remove(two.id)).toEqual({ untagged: [], deleted: [two.id, ...two.layers] });
    expect(layerEntries(store)).toEqual([]);
    expect(readdirSync(join(root, 'blobs/sha256'))).toEqual([]);
  });

  test('reopening finds the same images; leftovers of interrupted imports are removed', async () => {
    const store = await ImageStore.open(root);
    await twoImages(store);
    const before = store.list();
    // What a crash mid-import leaves: a temp dir, an unpacked layer and a blob the index never named.
    mkdirSync(join(root, 'tmp/1234-crashed/etc'), { recursive: true });
    mkdirSync(join(root, 'layers', 'cd'.repeat(32)));
    writeFileSync(join(root, 'blobs/sha256', 'ef'.repeat(32)), 'orphan');
    const reopened = await ImageStore.open(root);
    expect(reopened.list()).toEqual(before);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(layerEntries(reopened)).toHaveLength(3);
    expect(existsSync(join(root, 'blobs/sha256', 'ef'.repeat(32)))).toBe(false);
    const img = reopened.resolve('two:v1')!;
    expect(img.config.env).toEqual(['NAME=two']);
    expect(existsSync(join(reopened.lowerDirs(img)[0]!, 'two'))).toBe(true);
  });
});
