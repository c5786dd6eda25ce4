/**
 * A single-host `bridge` network for `container run`: a bridge in the daemon's namespace holding the
 * gateway, one veth per container with an address from the subnet (IPAM here, in memory, rebuilt from
 * the containers' namespaces after a restart), a default route through the gateway with masquerade for
 * egress, and `-p` port publishing by DNAT. Everything is named with the daemon's prefix.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { macForIp, parseSubnet, type Ipv4Subnet } from './addresses.js';
import { ipBatch, nftApply, runTool } from './commands.js';
import { removeTable } from './mesh-rules.js';
import { netnsPath, validatePrefix, TASK_ID_CHARS } from './names.js';
import { parseOrThrow, taskIdSchema } from './state-schema.js';
import type { TaskSandbox } from './types.js';

export interface BridgeNetworkOptions {
  prefix: string;
  /** Distinguishes this bridge network from others of the same daemon (0-999999). */
  index: number;
  subnet: string;
  /** Default: the subnet's first address. */
  gateway?: string;
}

export interface PortMapping {
  protocol: 'tcp' | 'udp';
  hostPort: number;
  containerPort: number;
}

export interface BridgeEndpoint extends TaskSandbox {
  ip: string;
}

function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

export class BridgeNetwork {
  readonly bridge: string;
  readonly table: string;
  readonly gateway: string;
  private readonly subnet: Ipv4Subnet;
  private bridgeIndex: number | undefined;
  /** Container key → address and published ports. */
  private readonly endpoints = new Map<string, { ip: string; ports: PortMapping[] }>();
  private loaded = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: BridgeNetworkOptions) {
    validatePrefix(options.prefix);
    if (!Number.isInteger(options.index) || options.index < 0 || options.index > 999_999) throw new Error(`bridge network index ${options.index} must be 0-999999`);
    this.subnet = parseSubnet(options.subnet);
    if (this.subnet.prefixLength > 29) throw new Error(`bridge network subnet ${options.subnet} is too small`);
    this.gateway = options.gateway ?? numberToIp(this.subnet.base + 1);
    this.bridge = `${options.prefix}-b${options.index}`;
    this.table = `${options.prefix}-b${options.index}`;
  }

  private namespaceOf(key: string): string {
    return `${this.options.prefix}-c${this.options.index}-${key}`;
  }

  private hostVeth(key: string): string {
    return `${this.options.prefix}c${key}`.slice(0, 15);
  }

  private serialized<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation);
    this.queue = result.catch(() => {});
    return result;
  }

  /** Creates the bridge (once), finds containers a previous daemon left, and returns the bridge's index. */
  private async ensureBridge(): Promise<number> {
    if (this.bridgeIndex !== undefined) return this.bridgeIndex;
    const show = await runTool(`bridge network ${this.bridge}`, 'ip', ['-j', 'link', 'show', this.bridge]).catch(() => undefined);
    if (!show) {
      await ipBatch(`bridge network ${this.bridge}: create`, [
        `link add ${this.bridge} type bridge`,
        `link set ${this.bridge} addrgenmode none`,
        `addr add ${this.gateway}/${this.subnet.prefixLength} dev ${this.bridge}`,
        `link set ${this.bridge} up`,
      ]);
    }
    const { stdout } = await runTool(`bridge network ${this.bridge}`, 'ip', ['-j', 'link', 'show', this.bridge]);
    this.bridgeIndex = (JSON.parse(stdout) as { ifindex: number }[])[0]!.ifindex;
    if (!this.loaded) await this.adopt();
    return this.bridgeIndex;
  }

  private async adopt(): Promise<void> {
    this.loaded = true;
    const prefix = this.namespaceOf('');
    let names: string[] = [];
    try { names = readdirSync('/run/netns').filter((n) => n.startsWith(prefix)); } catch { /* none yet */ }
    for (const name of names) {
      const { stdout } = await runTool(`inspect ${name}`, 'ip', ['-n', name, '-j', 'addr', 'show', 'eth0']).catch(() => ({ stdout: '[]' }));
      const ip = (JSON.parse(stdout || '[]') as { addr_info?: { family: string; local: string }[] }[])[0]?.addr_info?.find((a) => a.family === 'inet')?.local;
      if (ip) this.endpoints.set(name.slice(prefix.length), { ip, ports: [] });
    }
  }

  private allocate(): string {
    const used = new Set([...this.endpoints.values()].map((e) => e.ip));
    used.add(this.gateway);
    const size = 2 ** (32 - this.subnet.prefixLength);
    for (let offset = 1; offset < size - 1; offset++) {
      const ip = numberToIp(this.subnet.base + offset);
      if (!used.has(ip)) return ip;
    }
    throw new Error(`bridge network ${this.options.subnet} has no free address`);
  }

  /** Joins a container: its namespace, address, route, and published ports. */
  connect(containerId: string, hostname: string, ports: PortMapping[] = []): Promise<BridgeEndpoint> {
    return this.serialized(async () => {
      const key = parseOrThrow('container id', taskIdSchema, containerId).slice(0, TASK_ID_CHARS);
      for (const p of ports) {
        if (![p.hostPort, p.containerPort].every((n) => Number.isInteger(n) && n >= 1 && n <= 65535)) throw new Error(`invalid port mapping ${p.hostPort}:${p.containerPort}`);
        const clash = [...this.endpoints].find(([other, e]) => other !== key && e.ports.some((q) => q.protocol === p.protocol && q.hostPort === p.hostPort));
        if (clash) throw new Error(`port ${p.hostPort}/${p.protocol} is already published by container ${clash[0]}`);
      }
      const index = await this.ensureBridge();
      const netns = this.namespaceOf(key);
      const path = netnsPath(netns);
      if (this.endpoints.has(key) || existsSync(path)) await this.removeEndpoint(key);
      const ip = this.allocate();
      mkdirSync('/run/netns', { recursive: true });
      closeSync(openSync(path, 'wx'));
      const lines = [
        'link set lo up',
        // The host end goes to the daemon's namespace (ours, by /proc path), enslaved by index.
        `link add ${this.hostVeth(key)} netns /proc/${process.pid}/ns/net master if${index} up type veth peer name eth0 netns ${netns} address ${macForIp(ip)}`,
        `addr add ${ip}/${this.subnet.prefixLength} dev eth0`,
        'link set eth0 up',
        `route add default via ${this.gateway}`,
      ];
      try {
        await runTool(`container ${containerId}: join bridge network ${this.bridge}`, 'unshare', [`--net=${path}`, 'ip', '-batch', '-'], `${lines.join('\n')}\n`);
        this.endpoints.set(key, { ip, ports });
        await this.writeRules();
      } catch (err) {
        this.endpoints.delete(key);
        await this.removeEndpoint(key).catch(() => {});
        throw err;
      }
      return {
        ip,
        netnsPath: path,
        resolvConf: 'options ndots:0\n',
        hosts: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${ip}\t${hostname}\n`,
      };
    });
  }

  disconnect(containerId: string): Promise<void> {
    return this.serialized(async () => {
      const key = containerId.slice(0, TASK_ID_CHARS);
      if (!this.endpoints.has(key) && !existsSync(netnsPath(this.namespaceOf(key)))) return;
      const hadPorts = (this.endpoints.get(key)?.ports.length ?? 0) > 0;
      await this.removeEndpoint(key);
      if (hadPorts) await this.writeRules();
    });
  }

  private async removeEndpoint(key: string): Promise<void> {
    this.endpoints.delete(key);
    const netns = this.namespaceOf(key);
    // Deleting the host end first removes the pair at once (a namespace's links die asynchronously).
    await runTool('remove veth', 'ip', ['link', 'del', this.hostVeth(key)]).catch(() => { /* gone */ });
    if (existsSync(netnsPath(netns))) await ipBatch(`remove ${netns}`, [`netns del ${netns}`]);
  }

  /** Masquerade for egress and one DNAT per published port, as one transaction. */
  private async writeRules(): Promise<void> {
    const dnat: string[] = [];
    const local: string[] = [];
    for (const { ip, ports } of this.endpoints.values()) {
      for (const p of ports) {
        dnat.push(`    fib daddr type local ${p.protocol} dport ${p.hostPort} dnat to ${ip}:${p.containerPort}`);
        local.push(`    fib daddr type local ip daddr != 127.0.0.0/8 ${p.protocol} dport ${p.hostPort} dnat to ${ip}:${p.containerPort}`);
      }
    }
    const subnet = `${numberToIp(this.subnet.base)}/${this.subnet.prefixLength}`;
    writeForwarding();
    await nftApply(`bridge network ${this.bridge}: rules`, [
      `table ip ${this.table}`, `delete table ip ${this.table}`, `table ip ${this.table} {`,
      '  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', ...dnat, '  }',
      '  chain output {', '    type nat hook output priority -100; policy accept;', ...local, '  }',
      '  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;',
      `    ip saddr ${subnet} oifname != "${this.bridge}" masquerade`,
      '  }',
      '}', '',
    ].join('\n'));
  }

  /** Removes every container namespace, the bridge and the rules of this network. */
  close(): Promise<void> {
    return this.serialized(async () => {
      if (!this.loaded) await this.adopt();
      for (const key of [...this.endpoints.keys()]) await this.removeEndpoint(key);
      await runTool('remove bridge', 'ip', ['link', 'del', this.bridge]).catch(() => { /* never made */ });
      await nftApply(`bridge network ${this.bridge}: remove rules`, removeTable('ip', this.table));
      this.bridgeIndex = undefined;
      this.loaded = false;
    });
  }
}

/** Containers reach beyond the host, and published ports reach them: the daemon's namespace forwards. */
function writeForwarding(): void {
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
}
