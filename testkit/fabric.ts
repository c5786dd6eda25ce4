/**
 * The test network, for cluster tests and the network driver's tests alike: one network namespace
 * per test host, all plugged into a bridge that lives in a fabric namespace of its own, so nothing
 * here ever touches the root namespace's links, addresses, routes or firewall. Partitions are
 * nftables drop rules inside the hosts' namespaces (the kernel here has no netem).
 *
 * Names (FabricLayout): `<prefix>-fab` for the fabric, `<prefix>-h<N>` for host N, with address
 * <subnet>.<N>/24; a cluster test run uses `tswct<run>` and 10.231.<run>.
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

export const hostNetns = (runId: number, index: number) => `${PREFIX}${runId}-h${index}`;

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

/**
 * Where a fabric's namespaces and addresses are: `<prefix>-fab` holds the bridge, host N is
 * `<prefix>-hN` with `<subnet>.N/24` on its link `hostLink`.
 */
export interface FabricLayout {
  prefix: string;
  /** The first three octets of the hosts' /24. */
  subnet: string;
  /** The name of each host's end of its link to the fabric (default eth0). */
  hostLink?: string;
  /** The underlay's MTU (default 1500). */
  mtu?: number;
  /**
   * Make every host's drop table with the host, so that a cut is one nft call per host when it
   * counts (cluster tests time from it); without, a host gets its table at its first cut.
   */
  partitions?: boolean;
}

/** A cluster test run's layout: `tswct<run>-*`, 10.231.<run>.0/24. */
export function runLayout(runId: number): FabricLayout {
  return { prefix: `${PREFIX}${runId}`, subnet: `10.231.${runId}`, partitions: true };
}

export class Fabric {
  readonly hosts: FabricHost[] = [];
  /** host index -> addresses it currently drops traffic from */
  private readonly blocked = new Map<number, Set<string>>();
  private readonly withTable = new Set<number>();
  private readonly layout: Required<FabricLayout>;

  constructor(layout: FabricLayout) {
    this.layout = { hostLink: 'eth0', mtu: 1500, partitions: false, ...layout };
  }

  get netns(): string {
    return `${this.layout.prefix}-fab`;
  }

  hostNetns(index: number): string {
    return `${this.layout.prefix}-h${index}`;
  }

  hostIp(index: number): string {
    return `${this.layout.subnet}.${index}`;
  }

  /** Creates the fabric namespace and bridge, then hosts 1..count on it, in a few batches. */
  async create(count: number): Promise<FabricHost[]> {
    const { hostLink, mtu } = this.layout;
    const indexes = Array.from({ length: count }, (_, i) => i + 1);
    const namespaces = [this.netns, ...indexes.map((i) => this.hostNetns(i))];
    await run('ip', ['-batch', '-'], `${namespaces.map((ns) => `netns add ${ns}`).join('\n')}\n`);
    // Both ends of each pair are made from inside the fabric namespace: the root namespace never sees them.
    const links = ['link set lo up', 'link add br0 type bridge', 'link set br0 up'];
    for (const i of indexes) {
      links.push(`link add h${i} mtu ${mtu} type veth peer name ${hostLink} netns ${this.hostNetns(i)} mtu ${mtu}`, `link set h${i} master br0 up`);
    }
    await run('ip', ['-n', this.netns, '-batch', '-'], `${links.join('\n')}\n`);
    await Promise.all(indexes.map(async (i) => {
      const ns = this.hostNetns(i);
      await run('ip', ['-n', ns, '-batch', '-'], `link set lo up\naddr add ${this.hostIp(i)}/24 dev ${hostLink}\nlink set ${hostLink} up\n`);
      if (this.layout.partitions) {
        await run('nsenter', [`--net=/run/netns/${ns}`, 'nft', '-f', '-'], hostRuleset);
        this.withTable.add(i);
      }
      this.hosts.push({ index: i, netns: ns, ip: this.hostIp(i) });
      this.blocked.set(i, new Set());
    }));
    this.hosts.sort((a, b) => a.index - b.index);
    // The fabric must only switch: no bridge netfilter (a dockerd on this machine loads it) there or
    // in the hosts (it is per namespace), and no IPv6 chatter.
    await Promise.all(namespaces.map((ns) => run('nsenter', [`--net=/run/netns/${ns}`, 'sysctl', '-q', '-e', '-w',
      'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0',
      'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'])));
    return this.hosts;
  }

  private host(index: number): FabricHost {
    const h = this.hosts.find((x) => x.index === index);
    if (!h) throw new Error(`no test host ${index} in fabric ${this.layout.prefix}`);
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
    await Promise.all([...changes].map(([at, ips]) => this.nft(at, `add element inet ${NFT_TABLE} blocked_from { ${ips.join(', ')} }\n`)));
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
    await Promise.all([...changes].map(([at, ips]) => this.nft(at, `delete element inet ${NFT_TABLE} blocked_from { ${ips.join(', ')} }\n`)));
  }

  /** Lifts every cut. */
  async heal(): Promise<void> {
    const touched = [...this.blocked].filter(([, s]) => s.size > 0);
    await Promise.all(touched.map(([at, s]) => {
      s.clear();
      return this.nft(at, `flush set inet ${NFT_TABLE} blocked_from\n`);
    }));
  }

  /** Which hosts drop traffic from which, for reports. */
  cuts(): { at: number; from: string[] }[] {
    return [...this.blocked].filter(([, s]) => s.size > 0).map(([at, s]) => ({ at, from: [...s] }));
  }

  /** Removes every namespace named with this fabric's prefix (the veth pairs and the bridge go with them). */
  async destroy(): Promise<void> {
    await removeNamespaces((ns) => ns.startsWith(`${this.layout.prefix}-`));
    this.hosts.length = 0;
  }

  /** Runs an nft batch in a host, its drop table made first on the first cut there (hosts never cut have none). */
  private async nft(index: number, batch: string): Promise<string> {
    const netns = `--net=/run/netns/${this.host(index).netns}`;
    if (!this.withTable.has(index)) {
      await run('nsenter', [netns, 'nft', '-f', '-'], hostRuleset);
      this.withTable.add(index);
    }
    return run('nsenter', [netns, 'nft', '-f', '-'], batch);
  }
}

/** Containers' and sandboxes' namespaces before hosts, hosts before the fabric. */
function rank(ns: string): number {
  return ns.endsWith('-fab') ? 2 : /-h\d+$/.test(ns) ? 1 : 0;
}

/** Removes the namespaces `mine` picks: what tests made inside hosts first, then hosts, then the fabric. */
export async function removeNamespaces(mine: (ns: string) => boolean): Promise<void> {
  // Deleting a namespace deletes its end of each veth pair.
  const names = listNetns().filter(mine).sort((a, b) => rank(a) - rank(b));
  for (const ns of names) await run('ip', ['netns', 'delete', ns]).catch(() => {});
}

/** A cluster test run's hosts and fabric, and what each host's daemon made for overlays (host.ts networkPrefixOf). */
export async function removeRunNamespaces(runId: number): Promise<void> {
  await removeNamespaces((n) => n.startsWith(`${PREFIX}${runId}-`) || n.startsWith(`c${runId}h`));
}
