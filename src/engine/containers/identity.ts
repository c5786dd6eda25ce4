/**
 * Resolves a container's `user` ("name", "uid", "uid:gid", "name:group") to numbers, reading the
 * image's /etc/passwd and /etc/group from its layers as overlayfs would show them, through
 * layer-files.ts: a hostile image cannot make the daemon block on a FIFO or read a host file.
 */
import { ContainerError } from '../../api/container.js';
import { LayerFileError, readLayerFile } from './layer-files.js';

export interface Identity {
  uid: number;
  gid: number;
  additionalGids: number[];
}

function readFromLayers(lowerDirs: string[], path: string): string[] {
  let text: string | undefined;
  try {
    text = readLayerFile(lowerDirs, path);
  } catch (err) {
    if (err instanceof LayerFileError) throw new ContainerError(`cannot read the image's ${path}: ${err.message}`, 'invalid');
    throw err;
  }
  return (text ?? '').split('\n').filter((l) => l && !l.startsWith('#'));
}

export function resolveIdentity(user: string, lowerDirs: string[]): Identity {
  if (user === '' || user === 'root' || user === '0') return { uid: 0, gid: 0, additionalGids: [] };
  const [userPart = '', groupPart] = user.split(':', 2);
  const passwd = readFromLayers(lowerDirs, '/etc/passwd').map((l) => l.split(':'));
  let uid: number;
  let gid: number | undefined;
  let userName: string | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const entry = passwd.find((f) => f[2] === userPart);
    if (entry) { gid = Number(entry[3]); userName = entry[0]; }
  } else {
    const entry = passwd.find((f) => f[0] === userPart);
    if (!entry) throw new ContainerError(`unable to find user ${userPart}: no matching entries in passwd file`, 'invalid');
    uid = Number(entry[2]);
    gid = Number(entry[3]);
    userName = userPart;
  }
  const groups = readFromLayers(lowerDirs, '/etc/group').map((l) => l.split(':'));
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const entry = groups.find((f) => f[0] === groupPart);
      if (!entry) throw new ContainerError(`unable to find group ${groupPart}: no matching entries in group file`, 'invalid');
      gid = Number(entry[2]);
    }
  }
  const additionalGids = userName
    ? groups.filter((f) => (f[3] ?? '').split(',').includes(userName)).map((f) => Number(f[2]))
    : [];
  return { uid, gid: gid ?? 0, additionalGids };
}
