/**
 * The worker's overlay network driver: reconciles this node's namespaces, VXLAN devices, static peers,
 * DNS resolvers, VIP rules and routing mesh to the state the managers describe (see types.ts).
 *
 * Everything it makes is named with the daemon's prefix and lives in (or below) the network namespace
 * the daemon runs in. apply() is declarative: it diffs against what it made, and the first call after
 * a daemon restart adopts the prefix's namespaces it finds (or removes the ones no longer wanted).
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSubnet, subnetContains, macForIp } from './addresses.js';
import { bridgeBatch, ipBatch, nftApply, runTool } from './commands.js';
import { networkDnsRecords } from './dns-records.js';
import { daemonMeshRuleset, ingressSandboxRuleset, meshPorts, removeTable } from './mesh-rules.js';
import { BRIDGE_INDEX, DriverNames, netnsPath, taskVethName } from './names.js';
import { netattachArgs } from './netattach.js';
import { UNKNOWN_VTEP, peerChanges, remotePeers, type PeerTable } from './peers.js';
import { ResolverProcess } from './resolver-process.js';
import { parseOrThrow, taskIdSchema, validAttachment, validState } from './state-schema.js';
import { VXLAN_OVERHEAD, createSandbox, inspectSandbox, removeSandbox, underlayMtu } from './sandbox.js';
import type { NetworkDriver, NodeNetworkState, OverlayNetworkState, TaskAttachmentRequest, TaskSandbox } from './types.js';
import { taskVipRemoval, taskVipRuleset } from './vip-rules.js';

const NETNS_DIR = '/run/netns';
/** nft processes at once when a service's backends change under many local tasks. */
const TASK_RULE_CONCURRENCY = 4;


/** A daemon's scratch files for nft (rulesets handed over by path), on tmpfs, by its network prefix. */
export function networkScratchDir(prefix: string): string {
  return `/run/tsswarm-net/${prefix}`;
}

export interface NetworkDriverLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface NetworkDriverOptions {
  /** 1-7 characters, unique per daemon on the machine (e.g. derived from its data dir). */
  prefix: string;
  /** native/build/tsswarm-resolver; when the file is missing, networks work without DNS (and it is logged). */
  resolverPath?: string;
  /** Where names outside the cluster go (IP:PORT each); empty: such names fail. */
  dnsUpstreams?: string[];
  /**
   * native/build/tsswarm-netattach: when the file exists, a task's namespace is made by it in one
   * process (rtnetlink); otherwise by `unshare` + `ip -batch`.
   */
  netattachPath?: string;
  log?: NetworkDriverLog;
}

interface Sandbox {
  networkId: string;
  vni: number;
  netns: string;
  ingress: boolean;
  bridgeAddress: string;
  gateway: string;
  prefixLength: number;
  mtu: number;
  peers: PeerTable;
  resolver?: ResolverProcess;
  /** The ingress sandbox's last nftables ruleset. */
  meshRuleset?: string;
}

interface TaskRecord {
  /** First 12 characters of the task id: what its namespace is named by. */
  key: string;
  netns: string;
  /** Network ids (undefined while an adopted task's address matches no known network). */
  attachments: { networkId?: string; ip: string }[];
  /** Last ruleset written; undefined: unknown (adopted), so the next apply writes it. */
  vipRuleset?: string;
  sandbox?: TaskSandbox;
}

const NO_LOG: NetworkDriverLog = { info: () => {}, warn: () => {} };

export function createNetworkDriver(options: NetworkDriverOptions): NetworkDriver {
  return new OverlayNetworkDriver(options);
}

class OverlayNetworkDriver implements NetworkDriver {
  private readonly names: DriverNames;
  private readonly log: NetworkDriverLog;
  private state: NodeNetworkState = { vtep: '', networks: [], published: [] };
  private readonly sandboxes = new Map<string, Sandbox>(); // by network id
  /** Sandboxes found at startup and not yet matched to a network, by VNI. */
  private readonly foundSandboxes = new Map<number, string>();
  private readonly tasks = new Map<string, TaskRecord>(); // by task key
  private meshRuleset: string | undefined;
  private underlay: { vtep: string; mtu: number } | undefined;
  private adopted = false;
  private queue: Promise<unknown> = Promise.resolve();
  private resolverWarned = false;
  /** Which attach path was last logged (undefined: none yet). */
  private nativeAttachLogged: boolean | undefined;

  constructor(private readonly options: NetworkDriverOptions) {
    this.names = new DriverNames(options.prefix);
    this.log = options.log ?? NO_LOG;
  }

  apply(state: NodeNetworkState): Promise<void> {
    return this.serialized(() => this.reconcile(validState(state)));
  }

  attach(taskId: string, hostname: string, attachments: TaskAttachmentRequest[]): Promise<TaskSandbox> {
    return this.serialized(async () => {
      const valid = validAttachment(taskId, hostname, attachments);
      return this.attachTask(valid.taskId, valid.hostname, valid.attachments);
    });
  }

  detach(taskId: string): Promise<void> {
    return this.serialized(() => this.detachTask(parseOrThrow('task id', taskIdSchema, taskId)));
  }

  close(): Promise<void> {
    return this.serialized(() => this.removeEverything());
  }

  /** One operation at a time: each diffs against what the previous one left. */
  private serialized<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation);
    this.queue = result.catch(() => {});
    return result;
  }

  // ------------------------------------------------------------------ apply

  private async reconcile(state: NodeNetworkState): Promise<void> {
    await this.adoptOnce();
    this.state = state;
    const wanted = new Map<string, OverlayNetworkState>();
    for (const network of state.networks) if (this.needsSandbox(network, state)) wanted.set(network.id, network);

    // Tear down first: a VNI or the ingress link may be reused by what is created next.
    for (const [id, sandbox] of [...this.sandboxes]) {
      const network = wanted.get(id);
      if (network && network.vni === sandbox.vni && this.bridgeAddressOf(network) === sandbox.bridgeAddress && network.ingress === sandbox.ingress) continue;
      await this.dropSandbox(sandbox);
    }
    for (const [vni, netns] of [...this.foundSandboxes]) {
      const network = [...wanted.values()].find((n) => n.vni === vni);
      if (network) continue; // adopted below
      this.foundSandboxes.delete(vni);
      await removeSandbox(netns, true, `stale sandbox ${netns}`);
    }

    // One network's failure (or its resolver's) must not hold back the others, the VIPs or the mesh:
    // everything is attempted, and the failures are reported together.
    const failures: string[] = [];
    const attempt = async (step: Promise<void>) => step.catch((err: Error) => { failures.push(err.message); });
    await Promise.all([...wanted.values()].map((network) => attempt(this.reconcileNetwork(network, state))));
    await attempt(this.reconcileTaskRules());
    await attempt(this.reconcileMesh(state));
    await Promise.all([...wanted.values()].filter((n) => !n.ingress).map((network) => attempt(this.reconcileDns(network))));
    if (failures.length > 0) throw new Error(`network apply: ${failures.join('; ')}`);
  }

  private needsSandbox(network: OverlayNetworkState, state: NodeNetworkState): boolean {
    if (network.ingress) return true;
    if (network.endpoints.some((e) => e.vtep === state.vtep)) return true;
    return [...this.tasks.values()].some((t) => t.attachments.some((a) => a.networkId === network.id));
  }

  private bridgeAddressOf(network: OverlayNetworkState): string {
    const { prefixLength } = parseSubnet(network.subnet);
    const address = network.ingress ? network.nodeAddress : network.gateway;
    if (!address) throw new Error(`${describe(network)}: the ingress network has no nodeAddress for this node`);
    return `${address}/${prefixLength}`;
  }

  private async ensureSandbox(network: OverlayNetworkState, state: NodeNetworkState): Promise<Sandbox> {
    const existing = this.sandboxes.get(network.id);
    if (existing) return existing;
    const context = describe(network);
    const netns = this.names.sandbox(network.vni);
    const bridgeAddress = this.bridgeAddressOf(network);
    const { prefixLength } = parseSubnet(network.subnet);
    const mtu = (await this.underlayMtu(state.vtep)) - VXLAN_OVERHEAD;
    const sandbox: Sandbox = {
      networkId: network.id, vni: network.vni, netns, ingress: network.ingress, bridgeAddress,
      gateway: network.gateway, prefixLength, mtu, peers: new Map(),
    };
    const found = this.foundSandboxes.get(network.vni);
    if (found) {
      this.foundSandboxes.delete(network.vni);
      const seen = await inspectSandbox(found);
      if (seen.bridgeAddress === bridgeAddress && seen.ingress === network.ingress) {
        for (const ip of seen.neighbours) sandbox.peers.set(ip, UNKNOWN_VTEP);
        this.sandboxes.set(network.id, sandbox);
        this.log.info(`${context}: adopted sandbox ${netns}`);
        return sandbox;
      }
      await removeSandbox(found, seen.ingress, context);
    }
    await createSandbox(this.names, { netns, vni: network.vni, bridgeAddress, mtu, vtep: state.vtep, ingress: network.ingress, context });
    this.sandboxes.set(network.id, sandbox);
    this.log.info(`${context}: created sandbox ${netns} (mtu ${mtu})`);
    return sandbox;
  }

  private async reconcileNetwork(network: OverlayNetworkState, state: NodeNetworkState): Promise<void> {
    const sandbox = await this.ensureSandbox(network, state);
    const context = describe(network);
    const desired = remotePeers(network, state.vtep);
    const changes = peerChanges(sandbox.peers, desired);
    // Forwarding before neighbours when adding, so a neighbour never points at a MAC with no tunnel.
    if (changes.forwarding.length > 0) {
      await bridgeBatch(`${context}: program peers`, changes.forwarding, sandbox.netns).catch((err) => {
        sandbox.peers = new Map([...sandbox.peers].map(([ip]) => [ip, UNKNOWN_VTEP])); // re-send next time
        throw err;
      });
    }
    if (changes.neighbours.length > 0) {
      await ipBatch(`${context}: program peer neighbours`, changes.neighbours, sandbox.netns).catch((err) => {
        sandbox.peers = new Map([...sandbox.peers].map(([ip]) => [ip, UNKNOWN_VTEP]));
        throw err;
      });
    }
    sandbox.peers = desired;
  }

  private async reconcileDns(network: OverlayNetworkState): Promise<void> {
    const sandbox = this.sandboxes.get(network.id);
    if (!sandbox) return;
    const binary = this.options.resolverPath;
    if (!binary || !existsSync(binary)) {
      if (!this.resolverWarned) this.log.warn(`no DNS resolver binary at ${binary ?? '(not configured)'}: overlay networks run without service discovery`);
      this.resolverWarned = true;
      return;
    }
    sandbox.resolver ??= new ResolverProcess({
      binary,
      netnsPath: netnsPath(sandbox.netns),
      listen: network.gateway,
      upstreams: this.options.dnsUpstreams ?? [],
      context: describe(network),
      onExit: (reason) => this.log.warn(`${reason}; restarted on the next apply`),
    });
    const records = networkDnsRecords(network);
    try {
      await sandbox.resolver.update(records);
    } catch (err) {
      // A predecessor's resolver (daemon restart) may still hold the port for a moment: retry once.
      if (sandbox.resolver.running) throw err;
      this.log.warn(`${(err as Error).message}; retrying`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await sandbox.resolver.update(records);
    }
  }

  /** Each local task's VIP table, rewritten only where it changed (one `nft -f` per namespace). */
  private async reconcileTaskRules(): Promise<void> {
    const byId = new Map(this.state.networks.map((n) => [n.id, n]));
    const failures: string[] = [];
    await inBatches([...this.tasks.values()], TASK_RULE_CONCURRENCY, async (task) => {
      this.matchAdoptedAttachments(task);
      const networks = task.attachments.flatMap((a) => (a.networkId && byId.get(a.networkId)) || []);
      const ruleset = taskVipRuleset(networks);
      if (ruleset === task.vipRuleset) return;
      const text = ruleset || taskVipRemoval();
      try {
        await nftApply(`task ${task.key}: VIP rules`, text, netnsPath(task.netns));
        task.vipRuleset = ruleset;
      } catch (err) {
        failures.push((err as Error).message);
      }
    });
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  private async reconcileMesh(state: NodeNetworkState): Promise<void> {
    const ingress = state.networks.find((n) => n.ingress);
    const ingressSandbox = ingress && this.sandboxes.get(ingress.id);
    const local = new Set(ingress?.endpoints.filter((e) => e.vtep === state.vtep).map((e) => e.ip) ?? []);
    const ports = ingressSandbox ? meshPorts(state.published, (ip) => local.has(ip)) : [];
    if (state.published.length > 0 && !ingressSandbox) {
      this.log.warn('ports are published but the state has no ingress network: the routing mesh is off');
    }
    const table = this.names.meshTable();
    const daemonRuleset = ports.length > 0 ? daemonMeshRuleset(table, ports) : '';
    if (daemonRuleset !== this.meshRuleset) {
      if (daemonRuleset) {
        // Published ports are forwarded from the daemon's namespace into the ingress sandbox.
        writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
        await nftApply('routing mesh: rules of the daemon namespace', daemonRuleset);
      } else {
        await nftApply('routing mesh: remove rules of the daemon namespace', removeTable('ip', table));
      }
      this.meshRuleset = daemonRuleset;
    }
    if (ingressSandbox && ingress?.nodeAddress) {
      const sandboxRuleset = ingressSandboxRuleset(ports, ingress.nodeAddress);
      if (sandboxRuleset !== ingressSandbox.meshRuleset) {
        await nftApply(`${describe(ingress)}: routing mesh rules`, sandboxRuleset, netnsPath(ingressSandbox.netns));
        ingressSandbox.meshRuleset = sandboxRuleset;
      }
    }
  }

  private async dropSandbox(sandbox: Sandbox): Promise<void> {
    this.sandboxes.delete(sandbox.networkId);
    await sandbox.resolver?.stop();
    await removeSandbox(sandbox.netns, sandbox.ingress, `network ${sandbox.networkId} (vni ${sandbox.vni})`);
    this.log.info(`removed sandbox ${sandbox.netns}`);
  }

  /** Scratch files (rulesets handed to nft by path), on tmpfs. */
  private runDir(): string {
    const dir = networkScratchDir(this.names.prefix);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private async underlayMtu(vtep: string): Promise<number> {
    if (this.underlay?.vtep !== vtep) this.underlay = { vtep, mtu: await underlayMtu(vtep) };
    return this.underlay.mtu;
  }

  // ------------------------------------------------------------------ tasks

  private async attachTask(taskId: string, hostname: string, attachments: TaskAttachmentRequest[]): Promise<TaskSandbox> {
    await this.adoptOnce();
    const key = taskId.slice(0, 12);
    const known = this.tasks.get(key);
    if (known?.sandbox) return known.sandbox;
    if (attachments.length === 0) throw new Error(`task ${taskId}: no network attachments`);
    const networks = attachments.map((a) => {
      const network = this.state.networks.find((n) => n.id === a.networkId);
      if (!network) throw new Error(`task ${taskId}: network ${a.networkId} is not in the applied state`);
      if (!subnetContains(parseSubnet(network.subnet), a.ip)) throw new Error(`task ${taskId}: ${a.ip} is outside ${describe(network)} (${network.subnet})`);
      return network;
    });
    const sandboxes: Sandbox[] = [];
    for (const network of networks) sandboxes.push(await this.ensureSandbox(network, this.state));

    const netns = this.names.task(taskId);
    const path = netnsPath(netns);
    const primary = networks.findIndex((n) => !n.ingress);
    if (known && known.attachments.map((a) => a.ip).join() === attachments.map((a) => a.ip).join()) {
      // Found after a daemon restart with the same addresses: its container may be running in it, so
      // it is kept as it is, not rebuilt.
      known.attachments = attachments.map((a) => ({ networkId: a.networkId, ip: a.ip }));
      known.sandbox = this.taskSandbox(path, hostname, attachments, primary >= 0 ? networks[primary]!.gateway : undefined);
      return known.sandbox;
    }
    if (known || existsSync(path)) await this.removeTaskNamespace(netns, Math.max(attachments.length, known?.attachments.length ?? 0));
    const record: TaskRecord = { key, netns, attachments: attachments.map((a) => ({ networkId: a.networkId, ip: a.ip })) };
    const ruleset = taskVipRuleset(networks);
    const freshRuleset = taskVipRuleset(networks, true);
    const rulesFile = join(this.runDir(), `${key}.nft`);
    const gateway = primary >= 0 ? networks[primary]!.gateway : undefined;
    try {
      if (ruleset) writeFileSync(rulesFile, freshRuleset);
      await this.createTaskNamespace(taskId, netns, attachments, sandboxes, gateway, ruleset ? rulesFile : undefined);
      record.vipRuleset = ruleset;
    } catch (err) {
      await this.removeTaskNamespace(netns, attachments.length).catch(() => {});
      throw err;
    } finally {
      if (ruleset) rmSync(rulesFile, { force: true });
    }
    record.sandbox = this.taskSandbox(path, hostname, attachments, gateway);
    this.tasks.set(key, record);
    return record.sandbox;
  }

  /**
   * One process for the whole namespace, with its VIP rules (`rulesFile`) when there are any: the
   * native tsswarm-netattach when it is built, else unshare running one ip batch. Either way each
   * veth is created from inside the task's namespace straight into its sandbox, enslaved to the
   * bridge by its fixed index.
   */
  private async createTaskNamespace(
    taskId: string, netns: string, attachments: TaskAttachmentRequest[], sandboxes: Sandbox[], gateway: string | undefined, rulesFile: string | undefined,
  ): Promise<void> {
    const context = `task ${taskId}: create its network namespace${rulesFile ? ' with its VIP rules' : ''}`;
    const veth = taskVethName(taskId);
    const binary = this.options.netattachPath;
    const native = binary !== undefined && existsSync(binary);
    if (native !== this.nativeAttachLogged) {
      this.nativeAttachLogged = native;
      this.log.info(native ? `tasks attach with ${binary}` : `tasks attach with unshare + ip -batch (no tsswarm-netattach at ${binary ?? '(not configured)'})`);
    }
    if (native) {
      const links = attachments.map((a, i) => ({ sandbox: sandboxes[i]!.netns, ip: a.ip, prefixLength: sandboxes[i]!.prefixLength, mtu: sandboxes[i]!.mtu }));
      await runTool(context, binary, netattachArgs({ netns, veth, links, gateway, rulesFile }));
      return;
    }
    const path = netnsPath(netns);
    const lines = ['link set lo up'];
    attachments.forEach((attachment, i) => {
      const sandbox = sandboxes[i]!;
      const eth = `eth${i}`;
      lines.push(
        `link add ${veth} netns ${sandbox.netns} mtu ${sandbox.mtu} master if${BRIDGE_INDEX} up type veth peer name ${eth} netns ${netns} address ${macForIp(attachment.ip)} mtu ${sandbox.mtu}`,
        `link set ${eth} addrgenmode none`,
        `addr add ${attachment.ip}/${sandbox.prefixLength} dev ${eth}`,
        `link set ${eth} up`,
      );
    });
    if (gateway) lines.push(`route add default via ${gateway}`);
    mkdirSync(NETNS_DIR, { recursive: true });
    closeSync(openSync(path, 'wx'));
    const batch = `${lines.join('\n')}\n`;
    if (!rulesFile) {
      await runTool(context, 'unshare', [`--net=${path}`, 'ip', '-batch', '-'], batch);
    } else {
      // The VIP table goes in with the same process tree: a shell is cheaper than another spawn.
      await runTool(context, 'unshare', [`--net=${path}`, 'sh', '-ec', 'ip -batch -; exec nft -f "$1"', 'sh', rulesFile], batch);
    }
  }

  /** The first (non-ingress) network's resolver listens on its gateway. */
  private taskSandbox(path: string, hostname: string, attachments: TaskAttachmentRequest[], nameserver: string | undefined): TaskSandbox {
    return {
      netnsPath: path,
      resolvConf: nameserver ? `nameserver ${nameserver}\noptions ndots:0\n` : 'options ndots:0\n',
      hosts: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${attachments[0]!.ip}\t${hostname}\n`,
    };
  }

  private async detachTask(taskId: string): Promise<void> {
    await this.adoptOnce();
    const key = taskId.slice(0, 12);
    const record = this.tasks.get(key);
    const netns = this.names.task(taskId);
    if (!record && !existsSync(netnsPath(netns))) return;
    await this.removeTaskNamespace(netns, record?.attachments.length ?? 8);
    this.tasks.delete(key);
  }

  /**
   * Deleting the veths first makes their sandbox ends go at once (a namespace's devices otherwise die
   * asynchronously, and a task attached again right away would find its veth name taken).
   */
  private async removeTaskNamespace(netns: string, interfaces: number): Promise<void> {
    if (!existsSync(netnsPath(netns))) return;
    const links = Array.from({ length: interfaces }, (_, i) => `link del eth${i}`);
    await runTool(`remove links of ${netns}`, 'ip', ['-n', netns, '-force', '-batch', '-'], `${links.join('\n')}\n`).catch(() => { /* fewer links than guessed */ });
    await ipBatch(`remove ${netns}`, [`netns del ${netns}`]);
  }

  // ------------------------------------------------------------------ adoption and close

  private ownNamespaces(): string[] {
    try {
      return readdirSync(NETNS_DIR).filter((name) => this.names.classify(name) !== undefined);
    } catch {
      return [];
    }
  }

  /** After a restart: sandboxes are matched to networks on the first apply, tasks by their addresses. */
  private async adoptOnce(): Promise<void> {
    if (this.adopted) return;
    this.adopted = true;
    for (const netns of this.ownNamespaces()) {
      const kind = this.names.classify(netns)!;
      if (kind.kind === 'sandbox') {
        this.foundSandboxes.set(kind.vni, netns);
        continue;
      }
      const { stdout } = await runTool(`inspect ${netns}`, 'ip', ['-n', netns, '-j', 'addr', 'show']).catch(() => ({ stdout: '[]' }));
      const links = JSON.parse(stdout || '[]') as { ifname: string; addr_info?: { family: string; local: string }[] }[];
      const attachments = links
        .filter((l) => /^eth\d+$/.test(l.ifname))
        .sort((a, b) => Number(a.ifname.slice(3)) - Number(b.ifname.slice(3)))
        .flatMap((l) => l.addr_info?.filter((a) => a.family === 'inet').map((a) => ({ ip: a.local })) ?? []);
      this.tasks.set(kind.id, { key: kind.id, netns, attachments });
      this.log.info(`adopted task namespace ${netns}`);
    }
  }

  /** Gives an adopted task's addresses their network, once a state is known. */
  private matchAdoptedAttachments(task: TaskRecord): void {
    for (const attachment of task.attachments) {
      if (attachment.networkId) continue;
      const network = this.state.networks.find((n) => subnetContains(parseSubnet(n.subnet), attachment.ip));
      if (network) attachment.networkId = network.id;
    }
  }

  private async removeEverything(): Promise<void> {
    await Promise.all([...this.sandboxes.values()].map((s) => s.resolver?.stop()));
    const namespaces = this.ownNamespaces();
    const tasks = namespaces.filter((n) => this.names.classify(n)?.kind === 'task');
    const sandboxes = namespaces.filter((n) => this.names.classify(n)?.kind === 'sandbox');
    for (const netns of tasks) await this.removeTaskNamespace(netns, this.tasks.get(netns.slice(netns.lastIndexOf('-') + 1))?.attachments.length ?? 8);
    for (const netns of sandboxes) await removeSandbox(netns, true, `close: ${netns}`);
    await nftApply('close: remove routing mesh rules', removeTable('ip', this.names.meshTable()));
    await runTool('close: remove ingress link', 'ip', ['link', 'del', this.names.ingressLink()]).catch(() => { /* went with its sandbox */ });
    rmSync(networkScratchDir(this.names.prefix), { recursive: true, force: true });
    this.sandboxes.clear();
    this.foundSandboxes.clear();
    this.tasks.clear();
    this.meshRuleset = undefined;
    this.state = { vtep: '', networks: [], published: [] };
  }
}

/** Runs `work` over `items`, at most `limit` at a time (one nft process per task namespace). */
async function inBatches<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function describe(network: OverlayNetworkState): string {
  return `network ${network.name} (${network.id}, vni ${network.vni})`;
}
