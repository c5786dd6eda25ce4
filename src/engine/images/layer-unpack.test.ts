import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ImageStore } from './index.js';
import { OPAQUE_XATTR, unpackLayer } from './layer-unpack.js';
import { encodeEntry, END_OF_ARCHIVE, parseTar, TarType } from './tar-format.js';
import { makeTempDir, removeTempDir, sh, tarDir, writeOciLayout } from '../../../testkit/images.js';

const HAVE_ZSTD = spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
let work: string;
beforeEach(() => { work = makeTempDir(); });
afterEach(() => removeTempDir(work));

/** The xattrs of `path` inside `dir`, read back through GNU tar (Node has no getxattr). */
async function xattrsOf(dir: string, path: string): Promise<Record<string, string>> {
  const archive = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--no-recursion', '-C', dir, '-cf', '-', path]);
  for await (const ev of parseTar(Readable.from([archive]))) {
    if (ev.kind === 'entry') {
      return Object.fromEntries(Object.entries(ev.entry.pax).filter(([k]) => k.startsWith('SCHILY.xattr.')).map(([k, v]) => [k.slice('SCHILY.xattr.'.length), v]));
    }
  }
  return {};
}

describe('unpackLayer', () => {
  test('keeps ownership, modes, hardlinks, device nodes, fifos and xattrs', async () => {
    const src = join(work, 'src');
    mkdirSync(join(src, 'dev'), { recursive: true });
    writeFileSync(join(src, 'suid'), '#!/bin/sh\n');
    chownSync(join(src, 'suid'), 1234, 5678); // before chmod: chown clears the setuid bit
    chmodSync(join(src, 'suid'), 0o4751);
    linkSync(join(src, 'suid'), join(src, 'hardlink'));
    symlinkSync('/etc/hostname', join(src, 'abs-link'));
    sh('mknod', [join(src, 'dev/null'), 'c', '1', '3']);
    sh('mkfifo', [join(src, 'fifo')]);
    const layer = tarDir(src, join(work, 'special.tar'));
    // A directory carrying an xattr, appended as a second archive (no setfattr on this machine).
    writeFileSync(join(work, 'xattr.tar'), Buffer.concat([
      encodeEntry({ path: 'labelled/', type: TarType.directory, mode: 0o700, uid: 42, gid: 43, mtime: 1_700_000_000, pax: { 'SCHILY.xattr.user.note': 'hello' } }),
      END_OF_ARCHIVE,
    ]));
    sh('tar', ['-A', '-f', layer, join(work, 'xattr.tar')]);

    const out = join(work, 'out');
    mkdirSync(out);
    const r = await unpackLayer(layer, out, 'layer test');
    expect(r.compression).toBe('none');
    const suid = lstatSync(join(out, 'suid'));
    expect(suid.mode & 0o7777).toBe(0o4751);
    expect([suid.uid, suid.gid]).toEqual([1234, 5678]);
    expect(lstatSync(join(out, 'hardlink')).ino).toBe(suid.ino);
    const dev = lstatSync(join(out, 'dev/null'));
    expect(dev.isCharacterDevice()).toBe(true);
    expect(dev.rdev).toBe(lstatSync('/dev/null').rdev);
    expect(lstatSync(join(out, 'fifo')).isFIFO()).toBe(true);
    expect(lstatSync(join(out, 'abs-link')).isSymbolicLink()).toBe(true);
    const labelled = lstatSync(join(out, 'labelled'));
    expect([labelled.mode & 0o7777, labelled.uid, labelled.gid]).toEqual([0o700, 42, 43]);
    expect(await xattrsOf(out, 'labelled')).toEqual({ 'user.note': 'hello' });
  });

  test('whiteouts and opaque markers with long names, in POSIX and GNU formats', async () => {
    const long = `${'deep/'.repeat(25)}dir`;
    for (const format of ['posix', 'gnu']) {
      const src = join(work, `src-${format}`);
      mkdirSync(join(src, long), { recursive: true });
      writeFileSync(join(src, long, `.wh.${'x'.repeat(120)}`), '');
      writeFileSync(join(src, long, '.wh..wh..opq'), '');
      writeFileSync(join(src, long, 'kept'), 'kept');
      chmodSync(join(src, long), 0o750);
      const layer = join(work, `${format}.tar`);
      sh('tar', ['-C', src, `--format=${format}`, '-cf', layer, '.']);
      const out = join(work, `out-${format}`);
      mkdirSync(out);
      await unpackLayer(layer, out, 'layer test');
      expect(readdirSync(join(out, long)).sort()).toEqual(['kept', 'x'.repeat(120)]);
      expect(lstatSync(join(out, long, 'x'.repeat(120))).isCharacterDevice()).toBe(true);
      expect(lstatSync(join(out, long)).mode & 0o7777).toBe(0o750);
      expect(await xattrsOf(out, long)).toEqual({ [OPAQUE_XATTR]: 'y' });
    }
  });

  test('a layer with trailing garbage after the end marker still verifies against its diff_id', async () => {
    const src = join(work, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'f');
    const layer = tarDir(src, join(work, 'l.tar'));
    writeFileSync(layer, Buffer.concat([readFileSync(layer), Buffer.from('trailing junk')]));
    const out = join(work, 'out');
    mkdirSync(out);
    const r = await unpackLayer(layer, out, 'layer test');
    expect(r.diffId).toBe(`sha256:${execFileSync('sha256sum', [layer], { encoding: 'utf8' }).slice(0, 64)}`);
    expect(readFileSync(join(out, 'f'), 'utf8')).toBe('f');
  });

  test('GNU tar\'s own failure comes back as one line', async () => {
    const layer = join(work, 'dangling.tar');
    writeFileSync(layer, Buffer.concat([
      encodeEntry({ path: 'link', type: TarType.hardlink, linkpath: 'nowhere', mode: 0o644, uid: 0, gid: 0, mtime: 0 }),
      END_OF_ARCHIVE,
    ]));
    mkdirSync(join(work, 'out'));
    await expect(unpackLayer(layer, join(work, 'out'), 'layer test')).rejects.toThrow(/^layer test: extracting failed: link: Cannot hard link to .nowhere.: No such file or directory$/);
  });

  test('a truncated layer is refused', async () => {
    const src = join(work, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'x'.repeat(10_000));
    const layer = tarDir(src, join(work, 'l.tar'));
    writeFileSync(layer, readFileSync(layer).subarray(0, 3000));
    const out = join(work, 'out');
    mkdirSync(out);
    await expect(unpackLayer(layer, out, 'layer test')).rejects.toThrow(/^layer test: tar archive is truncated$/);
  });
});

describe('layer compression', () => {
  // zstd is not among the set-up's packages: without the program, the refusal must be clear instead.
  test.runIf(HAVE_ZSTD)('a zstd layer is unpacked (told by magic bytes)', async () => {
    const src = join(work, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'hello'), 'zstd\n');
    const plain = tarDir(src, join(work, 'l.tar'));
    sh('zstd', ['-q', plain, '-o', `${plain}.zst`]);
    const layout = join(work, 'zstd-image');
    writeOciLayout(layout, [{ file: `${plain}.zst` }]);
    const store = await ImageStore.open(join(work, 'images'));
    const [img] = await store.load(layout);
    expect(readFileSync(join(store.lowerDirs(img!)[0]!, 'hello'), 'utf8')).toBe('zstd\n');
  });

  test.runIf(!HAVE_ZSTD)('a zstd layer is refused clearly without the zstd program', async () => {
    const file = join(work, 'l.tar.zst');
    writeFileSync(file, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]));
    mkdirSync(join(work, 'out'));
    await expect(unpackLayer(file, join(work, 'out'), 'layer x')).rejects.toThrow(/^layer x: zstd-compressed, and the zstd program is not installed/);
  });

  test('bzip2 and xz layers are refused clearly', async () => {
    mkdirSync(join(work, 'out'));
    writeFileSync(join(work, 'l.bz2'), 'BZh91AY&SY not really');
    await expect(unpackLayer(join(work, 'l.bz2'), join(work, 'out'), 'layer x')).rejects.toThrow(/^layer x: bzip2-compressed layers are not supported \(only tar, gzip and zstd\)$/);
    writeFileSync(join(work, 'l.xz'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2]));
    await expect(unpackLayer(join(work, 'l.xz'), join(work, 'out'), 'layer x')).rejects.toThrow(/^layer x: xz-compressed layers are not supported/);
  });
});
