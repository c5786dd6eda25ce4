/** docker's `--publish` forms: `8080:80`, `8080:80/udp`, `80` (a port left to the swarm), and the long `published=8080,target=80,mode=host`. */
import type { PortConfig } from '../api/objects.js';
import { UsageError } from './units.js';

function port(flag: string, v: string, allowZero: boolean): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535 || (n === 0 && !allowZero)) throw new UsageError(`invalid port "${v}" in --publish ${flag}: expected 1-65535`);
  return n;
}

export function parsePublish(spec: string): PortConfig {
  if (spec.includes('=')) {
    const f: Record<string, string> = {};
    for (const kv of spec.split(',')) {
      const eq = kv.indexOf('=');
      if (eq < 0) throw new UsageError(`invalid --publish ${spec}: "${kv}" is not KEY=VALUE`);
      f[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    for (const k of Object.keys(f)) {
      if (!['published', 'target', 'mode', 'protocol'].includes(k)) throw new UsageError(`invalid --publish ${spec}: unknown field "${k}" (published, target, mode, protocol)`);
    }
    if (!f.target) throw new UsageError(`invalid --publish ${spec}: target=PORT is required`);
    const mode = f.mode ?? 'ingress';
    const protocol = f.protocol ?? 'tcp';
    if (mode !== 'ingress' && mode !== 'host') throw new UsageError(`invalid --publish ${spec}: mode must be ingress or host`);
    if (protocol !== 'tcp' && protocol !== 'udp') throw new UsageError(`invalid --publish ${spec}: protocol must be tcp or udp`);
    return { protocol, targetPort: port(spec, f.target, false), publishedPort: f.published ? port(spec, f.published, true) : 0, publishMode: mode };
  }
  const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw new UsageError(`invalid --publish ${spec}: expected PUBLISHED:TARGET[/tcp|udp] or published=P,target=T[,mode=ingress|host][,protocol=tcp|udp]`);
  return {
    protocol: (m[3] ?? 'tcp') as PortConfig['protocol'],
    targetPort: port(spec, m[2]!, false),
    publishedPort: m[1] ? port(spec, m[1], true) : 0,
    publishMode: 'ingress',
  };
}
