/**
 * Resolves a container's `user` ("name", "uid", "uid:gid", "name:group") to numbers, reading the
 * image's /etc/passwd and /etc/group from its layers (top layer first, as overlayfs would show them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerError } from '../../api/container.js';

export interface Identity {
  uid: number;
  gid: number;
  additionalGids: number[];
}

function readFromLayers(lowerDirs: string[], path: string): string[] {
  for (const dir of lowerDirs) {
    try {
      return readFileSync(join(dir, path), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    } catch { /* not in this layer (or whited out): look lower */ }
  }
  return [];
}

export function resolveIdentity(user: string, lowerDirs: string[]): Identity {
  if (user === '' || user === 'root' || user === '0') return { uid: 0, gid: 0, additionalGids: [] };
  const [userPart = '', groupPart] = user.split(':', 2);
  const passwd = readFromLayers(lowerDirs, 'etc/passwd').map((l) => l.split(':'));
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
  const groups = readFromLayers(lowerDirs, 'etc/group').map((l) => l.split(':'));
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
