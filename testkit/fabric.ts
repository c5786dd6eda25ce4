/**
 * The network of a cluster test: one network namespace per test host, all plugged into a bridge
 * that lives in a fabric namespace of its own, so nothing here ever touches the root namespace's
 * links, addresses, routes or firewall. Partitions are nftables drop rules inside the hosts'
 * namespaces (the kernel here has no netem).
 *
 * Names: `tswct<run>-fab` for the fabric, `tswct<run>-h<N>` for host N; host N has address
 * 10.231.<run>.<N>/24 on its `eth0`.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';

export const PREFIX = 'tswct';

export interface FabricHost {
  index: number;
  netns: string;
  ip: string;
}

/** Runs a command and fails with its stderr; `input` goes to stdin (for `ip -batch -` and `nft -f -`). */
export function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

export const fabricNetns = (runId: number) => `${PREFIX}${runId}-fab`;
export const hostNetns = (runId: number, index: number) => `${PREFIX}${runId}-h${index}`;
export const hostIp = (runId: number, index: number) => `10.231.${runId}.${index}`;

export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/** A run id (1..250) whose namespaces do not exist yet: it names the namespaces and the subnet. */
export function freeRunId(): number {
  const used = new Set(listNetns().filter((n) => n.startsWith(PREFIX)).map((n) => Number(/^tswct(\d+)-/.exec(n)?.[1])));
  for (let tries = 0; tries < 1000; tries++) {
    const id = 1 + Math.floor(Math.random() * 250);
    if (!used.has(id)) return id;
  }
  throw new Error('no free cluster-test run id: remove leftovers with `npm run cluster-test -- cleanup`');
}

const NFT_TABLE = 'tswct';

/** nft rules of one host: traffic from any address in `blocked_from` is dropped on the way in. */
const hostRuleset = `table inet ${NFT_TABLE} {
  set blocked_from { type ipv4_addr; }
  chain input { type filter hook input priority -10; policy accept; ip saddr @blocked_from drop; }
}
`;

export class Fabric {
  readonly hosts: FabricHost[] = [];
  /** host index -> addresses it currently drops traffic from */
  private readonly blocked = new Map<number, Set<string>>();

  constructor(readonly runId: number) {}

  get netns(): string {
    return fabricNetns(this.runId);
  }

  /** Creates the fabric namespace and bridge, then `count` hosts on it. */
  async create(count: number): Promise<FabricHost[]> {
    await run('ip', ['netns', 'add', this.netns]);
    await run('ip', ['-n', this.netns, '-batch', '-'], 'link set lo up\nlink add br0 type bridge\nlink set br0 up\n');
    for (let i = 1; i <= count; i++) await this.addHost(i);
    return this.hosts;
  }

  async addHost(index: number): Promise<FabricHost> {
    const ns = hostNetns(this.runId, index);
    const ip = hostIp(this.runId, index);
    await run('ip', ['netns', 'add', ns]);
    // Both ends are made from inside the fabric namespace: the root namespace never sees the pair.
    await run('ip', ['-n', this.netns, '-batch', '-'],
      `link add h${index} type veth peer name eth0 netns ${ns}\nlink set h${index} master br0\nlink set h${index} up\n`);
    await run('ip', ['-n', ns, '-batch', '-'], `link set lo up\naddr add ${ip}/24 dev eth0\nlink set eth0 up\n`);
    await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], hostRuleset);
    const host = { index, netns: ns, ip };
    this.hosts.push(host);
    this.blocked.set(index, new Set());
    return host;
  }

  private host(index: number): FabricHost {
    const h = this.hosts.find((x) => x.index === index);
    if (!h) throw new Error(`no test host ${index} in run ${this.runId}`);
    return h;
  }

  /**
   * Cuts hosts `from` off from hosts `to`: packets from `from` to `to` are dropped at `to`, and
   * (unless one-way) packets from `to` to `from` at `from`. One nft batch per host touched.
   */
  async partition(from: number[], to: number[], opts: { oneWay?: boolean } = {}): Promise<void> {
    const changes = new Map<number, string[]>();
    const block = (at: number, src: number[]) => {
      const set = this.blocked.get(at)!;
      const add = src.map((s) => this.host(s).ip).filter((ip) => !set.has(ip));
      for (const ip of add) set.add(ip);
      if (add.length) changes.set(at, [...(changes.get(at) ?? []), ...add]);
    };
    for (const t of to) block(t, from.filter((f) => f !== t));
    if (!opts.oneWay) for (const f of from) block(f, to.filter((t) => t !== f));
    await Promise.all([...changes].map(([at, ips]) => run('ip', ['netns', 'exec', this.host(at).netns, 'nft', '-f', '-'],
      `add element inet ${NFT_TABLE} blocked_from { ${ips.join(', ')} }\n`)));
  }

  /** Lifts the cuts between host `index` and `others`, both ways. */
  async unblock(index: number, others: number[]): Promise<void> {
    const ip = this.host(index).ip;
    const changes = new Map<number, string[]>();
    const own = this.blocked.get(index)!;
    const ownIps = others.map((o) => this.host(o).ip).filter((x) => own.has(x));
    for (const x of ownIps) own.delete(x);
    if (ownIps.length) changes.set(index, ownIps);
    for (const o of others) {
      const set = this.blocked.get(o)!;
      if (set.delete(ip)) changes.set(o, [...(changes.get(o) ?? []), ip]);
    }
    await Promise.all([...changes].map(([at, ips]) => run('ip', ['netns', 'exec', this.host(at).netns, 'nft', '-f', '-'],
      `delete element inet ${NFT_TABLE} blocked_from { ${ips.join(', ')} }\n`)));
  }

  /** Lifts every cut. */
  async heal(): Promise<void> {
    const touched = [...this.blocked].filter(([, s]) => s.size > 0);
    await Promise.all(touched.map(([at, s]) => {
      s.clear();
      return run('ip', ['netns', 'exec', this.host(at).netns, 'nft', 'flush', 'set', 'inet', NFT_TABLE, 'blocked_from']);
    }));
  }

  /** Which hosts drop traffic from which, for reports. */
  cuts(): { at: number; from: string[] }[] {
    return [...this.blocked].filter(([, s]) => s.size > 0).map(([at, s]) => ({ at, from: [...s] }));
  }

  /** Removes every namespace of this run (the veth pairs and the bridge go with them). */
  async destroy(): Promise<void> {
    await removeRunNamespaces(this.runId);
    this.hosts.length = 0;
  }
}

/** Containers' and sandboxes' namespaces before hosts, hosts before the fabric. */
function rank(ns: string): number {
  return ns.endsWith('-fab') ? 2 : ns.startsWith(PREFIX) ? 1 : 0;
}

export async function removeRunNamespaces(runId: number): Promise<void> {
  // The run's hosts and fabric, and what each host's daemon made for overlays (host.ts networkPrefixOf).
  const mine = listNetns().filter((n) => n.startsWith(`${PREFIX}${runId}-`) || n.startsWith(`c${runId}h`));
  // Hosts first, then the fabric: deleting a namespace deletes its end of each veth pair.
  mine.sort((a, b) => rank(a) - rank(b));
  for (const ns of mine) await run('ip', ['netns', 'delete', ns]).catch(() => {});
}
