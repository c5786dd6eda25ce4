/**
 * Reads a small file of an image from its layers on the host, as the container would see it, without
 * trusting the image: a path is resolved one component at a time in the stack of layer dirs (the top
 * layer that has an entry wins; an overlay whiteout hides it), symlinks are followed inside the
 * image's root (an absolute or `..` target never leaves it), and only a regular file of bounded size
 * is read, opened non-blocking and without following a last symlink. A FIFO, a device, a symlink to
 * the host's /etc/shadow or a 10 GiB passwd file therefore cannot stall or feed the daemon.
 */
import { constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, closeSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';

/** More than any real passwd or group file; what an image ships beyond it is refused. */
export const MAX_LAYER_FILE_BYTES = 1 << 20;
const MAX_SYMLINKS = 40;

export class LayerFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayerFileError';
  }
}

/** An overlayfs whiteout: a character device 0:0 in an upper layer hides the name below it. */
function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** The top-most layer entry at `rel` ("etc/passwd"), or undefined when no layer has it (or it is whited out). */
function lookup(lowerDirs: string[], rel: string): { path: string; st: Stats } | undefined {
  for (const dir of lowerDirs) {
    const path = join(dir, rel);
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    return isWhiteout(st) ? undefined : { path, st };
  }
  return undefined;
}

/**
 * `path` ("/etc/passwd") resolved in the image's root: the layer entry it names, following symlinks
 * the way the kernel would inside the container, never above the root.
 */
function resolveInRoot(lowerDirs: string[], path: string): { path: string; st: Stats } | undefined {
  let pending = path.split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') { done.pop(); continue; }
    const rel = [...done, name].join('/');
    const found = lookup(lowerDirs, rel);
    if (!found) return undefined;
    if (found.st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new LayerFileError(`${path}: too many levels of symbolic links in the image`);
      const target = readlinkSync(found.path);
      // An absolute target starts again at the image's root, a relative one from the link's dir.
      if (target.startsWith('/')) done.length = 0;
      pending = [...posix.normalize(target).split('/').filter(Boolean), ...pending];
      continue;
    }
    if (pending.length > 0 && !found.st.isDirectory()) return undefined;
    done.push(name);
    if (pending.length === 0) return found;
  }
  return undefined;
}

/**
 * The text of `path` in the image, or undefined when the image has no such file. Throws LayerFileError
 * for what a well-formed image never ships there: not a regular file, or over MAX_LAYER_FILE_BYTES.
 */
export function readLayerFile(lowerDirs: string[], path: string): string | undefined {
  const found = resolveInRoot(lowerDirs, path);
  if (!found) return undefined;
  if (!found.st.isFile()) throw new LayerFileError(`${path} in the image is not a regular file`);
  if (found.st.size > MAX_LAYER_FILE_BYTES) throw new LayerFileError(`${path} in the image is ${found.st.size} bytes, over the ${MAX_LAYER_FILE_BYTES} allowed`);
  // The entry was checked above, but it is opened again by name: no symlink and no FIFO may be taken now.
  const fd = openSync(found.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_LAYER_FILE_BYTES) throw new LayerFileError(`${path} in the image changed while it was read`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
