import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveIdentity } from './identity.js';

const top = mkdtempSync(join(tmpdir(), 'tsswarm-test-identity-'));
const lower = mkdtempSync(join(tmpdir(), 'tsswarm-test-identity-'));
mkdirSync(join(top, 'etc'));
mkdirSync(join(lower, 'etc'));
// The top layer's passwd shadows the lower one's, as overlayfs would show it.
writeFileSync(join(top, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/srv:/bin/sh\n');
writeFileSync(join(lower, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n');
writeFileSync(join(lower, 'etc/group'), 'root:x:0:\nweb:x:1001:\nstaff:x:50:web,other\n');
afterAll(() => { rmSync(top, { recursive: true }); rmSync(lower, { recursive: true }); });

describe('resolveIdentity', () => {
  it('resolves names through the topmost passwd and supplementary groups', () => {
    expect(resolveIdentity('web', [top, lower])).toEqual({ uid: 1000, gid: 1001, additionalGids: [50] });
  });
  it('takes numeric ids as they are', () => {
    expect(resolveIdentity('4242:77', [top, lower])).toEqual({ uid: 4242, gid: 77, additionalGids: [] });
    expect(resolveIdentity('', [top])).toEqual({ uid: 0, gid: 0, additionalGids: [] });
  });
  it('names an unknown user or group', () => {
    expect(() => resolveIdentity('old', [top, lower])).toThrow('unable to find user old');
    expect(() => resolveIdentity('web:nogroup', [top, lower])).toThrow('unable to find group nogroup');
  });
});
