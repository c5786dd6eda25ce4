import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { encodeEntry, END_OF_ARCHIVE, parseTar, TarType, type TarEntry } from './tar-format.js';

async function entriesOf(archive: Buffer, chunk: number): Promise<TarEntry[]> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < archive.length; i += chunk) pieces.push(archive.subarray(i, i + chunk));
  const out: TarEntry[] = [];
  for await (const ev of parseTar(Readable.from(pieces))) if (ev.kind === 'entry') out.push(ev.entry);
  return out;
}

const segment = fc.stringMatching(/^[a-zA-Z0-9._ é-]{1,40}$/).filter((s) => s !== '.' && s !== '..');
const entryArb = fc.record({
  path: fc.array(segment, { minLength: 1, maxLength: 8 }).map((p) => p.join('/')),
  type: fc.constantFrom(TarType.directory, TarType.charDevice, TarType.blockDevice, TarType.fifo),
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  gid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  mtime: fc.integer({ min: 0, max: 2 ** 33 }),
  devmajor: fc.integer({ min: 0, max: 4095 }),
  devminor: fc.integer({ min: 0, max: 65535 }),
  linkpath: fc.array(segment, { minLength: 1, maxLength: 6 }).map((p) => p.join('/')),
  xattr: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
});

describe('tar format', () => {
  test('entries we encode parse back the same, however the stream is chunked', async () => {
    await fc.assert(fc.asyncProperty(fc.array(entryArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 1500 }), async (entries, chunk) => {
      const archive = Buffer.concat([
        ...entries.map((e) => encodeEntry({ ...e, pax: e.xattr === undefined ? {} : { 'SCHILY.xattr.user.x': e.xattr } })),
        END_OF_ARCHIVE,
      ]);
      const parsed = await entriesOf(archive, chunk);
      expect(parsed.map((p) => ({ path: p.path, linkpath: p.linkpath, type: p.type, mode: p.mode, uid: p.uid, gid: p.gid, mtime: p.mtime, devmajor: p.devmajor, devminor: p.devminor, xattr: p.pax['SCHILY.xattr.user.x'] })))
        .toEqual(entries.map((e) => ({ ...e, mtime: Math.min(e.mtime, 0o77777777777) })));
    }), { numRuns: 200 });
  });

  test('garbage is not a tar archive; a cut-off archive is truncated', async () => {
    await expect(entriesOf(Buffer.from('x'.repeat(2048)), 512)).rejects.toThrow(/^not a tar archive$/);
    const one = encodeEntry({ path: 'a/', type: TarType.directory, mode: 0o755, uid: 0, gid: 0, mtime: 0 });
    await expect(entriesOf(one.subarray(0, 300), 100)).rejects.toThrow(/truncated/);
    // A complete entry without the end-of-archive marker is accepted (several writers omit it).
    expect((await entriesOf(one, 512)).map((e) => e.path)).toEqual(['a/']);
  });
});
