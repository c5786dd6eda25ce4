import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveIdentity } from './identity.js';
import { MAX_LAYER_FILE_BYTES, readLayerFile } from './layer-files.js';

// Each test is an image a hostile author could ship: the daemon must neither hang, nor read the
// host's files, nor read without bound.
let top: string;
let lower: string;
let host: string;
beforeEach(() => {
  [top, lower, host] = ['top', 'lower', 'host'].map((n) => mkdtempSync(join(tmpdir(), `tsswarm-test-layerfiles-${n}-`))) as [string, string, string];
  mkdirSync(join(top, 'etc'));
  mkdirSync(join(lower, 'etc'));
  writeFileSync(join(lower, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:1000:1000::/srv:/bin/sh\n');
  writeFileSync(join(host, 'shadow'), 'web:x:4242:4242::/:/bin/sh\n');
});
afterEach(() => { for (const d of [top, lower, host]) rmSync(d, { recursive: true, force: true }); });

describe('reading an image\'s files on the host', () => {
  it('refuses a FIFO as /etc/passwd at once instead of blocking the daemon', () => {
    execFileSync('mkfifo', [join(top, 'etc/passwd')]);
    const started = Date.now();
    expect(() => resolveIdentity('web', [top, lower])).toThrow(/etc\/passwd in the image is not a regular file/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('follows an absolute symlink inside the image, never to the host file of that name', () => {
    symlinkSync(join(host, 'shadow'), join(top, 'etc/passwd'));
    // The link names a host path; inside the image that path does not exist.
    expect(readLayerFile([top, lower], '/etc/passwd')).toBeUndefined();
    expect(() => resolveIdentity('web', [top, lower])).toThrow(/unable to find user web/);
  });

  it('keeps `..` in a symlink at the image\'s root', () => {
    symlinkSync('../../../../../../../..' + join(host, 'shadow'), join(top, 'etc/passwd'));
    expect(readLayerFile([top, lower], '/etc/passwd')).toBeUndefined();
  });

  it('resolves a symlinked /etc the way the container sees it, through the layers', () => {
    rmSync(join(top, 'etc'), { recursive: true });
    mkdirSync(join(top, 'config'));
    writeFileSync(join(top, 'config/passwd'), 'web:x:2000:2000::/:/bin/sh\n');
    symlinkSync('/config', join(top, 'etc'));
    expect(resolveIdentity('web', [top, lower])).toMatchObject({ uid: 2000, gid: 2000 });
  });

  it('refuses a passwd file over the size limit without reading it', () => {
    writeFileSync(join(top, 'etc/passwd'), '');
    truncateSync(join(top, 'etc/passwd'), MAX_LAYER_FILE_BYTES + 1);
    expect(() => resolveIdentity('web', [top, lower])).toThrow(/over the \d+ allowed/);
  });

  it('treats an overlay whiteout as no file, not as "look lower"', () => {
    execFileSync('mknod', [join(top, 'etc/passwd'), 'c', '0', '0']);
    expect(readLayerFile([top, lower], '/etc/passwd')).toBeUndefined();
    expect(readLayerFile([lower], '/etc/passwd')).toContain('web:x:1000');
  });
});
