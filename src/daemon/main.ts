/**
 * `tsswarm daemon`: one per host. Owns the data dir, serves the local API on a root-only unix
 * socket, and runs this node's containers. Several daemons can share a machine: each has its own
 * data dir, socket, cgroup parent (and, in cluster tests, network namespace).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../log.js';
import { writeFileAtomic } from '../durable-file.js';
import { ContainerManager } from '../engine/containers/manager.js';
import { RuntimeDriver, cgroupLayout, nativeDir, type RuntimeName } from '../engine/runtime/driver.js';
import { createNetworkDriver } from '../network/driver.js';
import { BridgeNetwork } from '../network/bridge-network.js';
import { runtimeStateRoot } from '../engine/runtime/state-root.js';
import { startCommandLauncher } from '../launcher/command-launcher.js';

/** The single-host bridge network of `container run --network bridge` (Docker's is 172.17.0.0/16). */
const DEFAULT_BRIDGE_SUBNET = '172.29.0.0/16';
import { nodeApiHandlers, nodeApiService } from '../engine/node-api.js';
import { CredentialStore, ImageStore } from '../engine/images/index.js';
import { ImageDistribution } from '../engine/images/distribution.js';
import { SwarmNode } from './swarm.js';
import { swarmApiHandlers, swarmApiService } from './swarm-api.js';
import { controlService } from '../manager/grpc-services.js';

export interface DaemonOptions {
  dataDir: string;
  socket: string;
  listenAddr: string;
  cgroupParent: string;
  runtime: RuntimeName;
  logLevel: string;
  /** The node's name in the swarm; default the machine's hostname. */
  hostname?: string;
  networkDriver?: 'overlay' | 'none';
  networkPrefix?: string;
  bridgeSubnet?: string;
  dnsUpstream?: string[];
  /** Registries reached over plain HTTP (besides loopback, as docker). */
  insecureRegistry?: string[];
  /** Where `login` keeps credentials (DIR/config.json); default $TSSWARM_CONFIG or ~/.tsswarm. */
  registryConfig?: string;
}

const CGROUP_PARENT_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*(\/[a-zA-Z0-9][a-zA-Z0-9_.-]*)*$/;

/** Refuses to share a data dir with a live daemon; a stale pid file from a crash is taken over. */
function claimDataDir(dataDir: string): void {
  const pidFile = join(dataDir, 'daemon.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    let cmdline = '';
    try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { /* gone */ }
    if (pid && pid !== process.pid && cmdline.includes('daemon')) {
      throw new Error(`data dir ${dataDir} is in use by the daemon with pid ${pid}`);
    }
  }
}

async function nodeId(dataDir: string): Promise<string> {
  const file = join(dataDir, 'node-id');
  const existing = await readFile(file, 'utf8').catch(() => '');
  if (existing.trim()) return existing.trim();
  const id = randomBytes(13).toString('hex').slice(0, 25);
  await writeFileAtomic(file, id);
  return id;
}

export async function runDaemon(o: DaemonOptions): Promise<void> {
  const log = createLogger('tsswarm-daemon', o.logLevel);
  const dataDir = resolve(o.dataDir);
  const socket = resolve(o.socket);
  if (!CGROUP_PARENT_RE.test(o.cgroupParent)) throw new Error(`invalid --cgroup-parent "${o.cgroupParent}": expected a relative cgroup path such as tsswarm or tests/node1`);
  if (process.getuid?.() !== 0) throw new Error('the daemon must run as root (it creates namespaces, cgroups and mounts)');

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  claimDataDir(dataDir);
  await writeFile(join(dataDir, 'daemon.pid'), `${process.pid}\n`);
  const id = await nodeId(dataDir);

  // Now, while this process is small: the launcher forks the node's commands from then on. It ends
  // when this process does (its stdin closes).
  const launcherPath = join(nativeDir(), 'tsswarm-launcher');
  if (existsSync(launcherPath)) {
    startCommandLauncher(launcherPath, (why) => log.warn({ why }, 'command launcher gone: spawning commands from the daemon'));
  } else {
    log.warn({ launcherPath }, 'no tsswarm-launcher: spawning commands from the daemon (make -C native builds it)');
  }

  const stateRoot = runtimeStateRoot(dataDir);
  await mkdir(stateRoot, { recursive: true, mode: 0o700 });
  const runtime = new RuntimeDriver(o.runtime, stateRoot);
  const images = await ImageStore.open(join(dataDir, 'images'), log);
  const distribution = new ImageDistribution({
    store: images, log,
    ...(o.registryConfig ? { credentials: new CredentialStore(join(o.registryConfig, 'config.json')) } : {}),
    client: { insecureRegistries: o.insecureRegistry ?? [] },
  });
  const networkPrefix = o.networkPrefix || `t${createHash('sha256').update(dataDir).digest('hex').slice(0, 5)}`;
  const bridge = o.networkDriver === 'none' ? undefined : new BridgeNetwork({ prefix: networkPrefix, index: 0, subnet: o.bridgeSubnet ?? DEFAULT_BRIDGE_SUBNET });
  // Containers on swarm networks go through the swarm role, made below (it needs the containers first).
  let swarm: SwarmNode | undefined;
  const swarmNetworks = o.networkDriver === 'none' ? undefined : {
    connect: (req: Parameters<SwarmNode['attachContainer']>[0]) => swarm!.attachContainer(req),
    disconnect: (a: Parameters<SwarmNode['detachContainer']>[0]) => swarm!.detachContainer(a),
  };
  const containers = await ContainerManager.open({ dataDir, images, runtime, cgroupParent: o.cgroupParent, log, bridge, swarmNetworks });

  // Overlay networks live in this daemon's network namespace, named with a prefix of its own, so that
  // several daemons on one machine (test hosts) never touch each other's.
  const network = o.networkDriver === 'none' ? undefined : createNetworkDriver({
    prefix: networkPrefix,
    resolverPath: join(nativeDir(), 'tsswarm-resolver'),
    netattachPath: join(nativeDir(), 'tsswarm-netattach'),
    dnsUpstreams: o.dnsUpstream ?? [],
    log: { info: (msg) => log.info({ component: 'network' }, msg), warn: (msg) => log.warn({ component: 'network' }, msg) },
  });

  swarm = new SwarmNode({
    dataDir, localNodeId: id, hostname: o.hostname || hostname(), defaultListenAddr: o.listenAddr, logger: log, network,
    images: {
      // An image only this node has (imported or loaded, never pulled) is no registry's to pin.
      pin: async (ref, auth) => {
        const local = images.resolve(ref);
        if (local && !(local.repoDigests ?? []).length) return undefined;
        return distribution.pin(ref, auth).catch((err: Error) => {
          log.warn({ image: ref, err: err.message }, 'image could not be resolved to a digest: each node pulls the tag as it finds it');
          return undefined;
        });
      },
      authFor: (ref) => distribution.authFor(ref),
    },
    containers: {
      create: (spec) => containers.create(spec), start: (ref) => containers.start(ref), stop: (ref, t) => containers.stop(ref, t),
      remove: (ref, force) => containers.remove(ref, force), list: (all) => containers.list(all), get: (ref) => containers.get(ref),
      wait: (ref) => containers.wait(ref),
      prepareImage: async (ref, auth) => { await distribution.ensure(ref, 'missing', auth ? { auth } : {}); },
      check: (ref, cmd, timeoutMs) => containers.check(ref, cmd, timeoutMs),
      imageHealthcheck: (ref) => images.resolve(ref)?.config.healthcheck,
      logs: (ref, opts) => containers.logs(ref, opts),
    },
  });
  await swarm.resume().catch((err) => log.error({ err: (err as Error).message }, 'could not rejoin the swarm'));

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  server.addService(swarmApiService(), swarmApiHandlers(swarm, log));
  server.addService(controlService(), swarm.controlHandlers());
  server.addService(nodeApiService(), nodeApiHandlers({
    containers,
    images,
    distribution,
    log,
    info: {
      version: '0.1.0', nodeId: id, hostname: o.hostname || hostname(), dataDir, runtime: o.runtime,
      cgroupParent: o.cgroupParent, cgroupVersion: cgroupLayout(),
    },
  }));

  await mkdir(dirname(socket), { recursive: true, mode: 0o755 });
  // A socket file left by a crashed daemon would make bind fail; claimDataDir ruled out a live owner.
  if (existsSync(socket)) unlinkSync(socket);
  await new Promise<void>((ok, fail) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? fail(err) : ok())));
  chmodSync(socket, 0o600);
  log.info({ socket, dataDir, nodeId: id, runtime: o.runtime, cgroupParent: o.cgroupParent }, 'daemon ready');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'daemon stopping; containers keep running under their shims');
    containers.close();
    void swarm.close().catch(() => {});
    server.tryShutdown(() => {
      try { unlinkSync(socket); } catch { /* already gone */ }
      try { unlinkSync(join(dataDir, 'daemon.pid')); } catch { /* already gone */ }
      // The runtime's state dir of this data dir, when no container is left in it (rmdir refuses otherwise).
      try { rmdirSync(stateRoot); } catch { /* containers still running, or gone already */ }
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A bug in one request must not take the node's containers' supervisor down with it.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  // Serve until a signal: shutdown() ends the process.
  await new Promise<never>(() => {});
}
