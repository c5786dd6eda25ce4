/**
 * The gRPC NodeAPI (proto/node.proto) over the daemon's unix socket: the local CLI's view of this
 * node's containers and images. Every call is validated here; no error escapes as a crash.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import { validate, ValidationError } from '../api/validation.js';
import { ContainerManager, type ImageLookup } from './containers/manager.js';
import { containerSpecSchema, withSpecDefaults } from '../api/container-spec.js';
import { ContainerError, type ContainerRecord, type ContainerSpec } from '../api/container.js';
import type { LogEntry } from './containers/logs.js';
import type { ImageDistribution, PullPolicy } from './images/distribution.js';
import { ImageError } from './images/errors.js';
import { RegistryError } from './images/registry/errors.js';
import type { PullEvent, PushEvent } from './images/registry/progress.js';

export interface ImageRecordLike {
  id: string;
  refs: string[];
  layers: string[];
  created: string;
  size: number;
  config: unknown;
  repoDigests?: string[];
}

/** What the API needs of the image store. */
export interface ImageService extends ImageLookup {
  importRootfs(tarPath: string, ref: string): Promise<ImageRecordLike>;
  load(path: string): Promise<ImageRecordLike[]>;
  list(): ImageRecordLike[];
  resolve(ref: string): (ImageRecordLike & ReturnType<ImageLookup['resolve']>) | undefined;
  remove(ref: string, opts: { force?: boolean; inUse?: (id: string) => boolean }): Promise<{ untagged: string[]; deleted: string[] }>;
  tag(source: string, target: string): Promise<ImageRecordLike>;
  prune(opts: { all?: boolean; inUse?: (id: string) => boolean }): Promise<{ untagged: string[]; deleted: string[] }>;
  save(refs: string[], out: string, format: 'docker' | 'oci'): Promise<void>;
  history(ref: string): Promise<{ created: string; createdBy: string; comment: string; size: number; emptyLayer: boolean }[]>;
}

export interface NodeInfo {
  version: string;
  nodeId: string;
  hostname: string;
  dataDir: string;
  runtime: string;
  cgroupParent: string;
  cgroupVersion: string;
}

function toImage(img: ImageRecordLike) {
  return { id: img.id, refs: img.refs, layers: img.layers, created: img.created, size: img.size, configJson: JSON.stringify(img.config), repoDigests: img.repoDigests ?? [] };
}

/** A pull's or push's event as ImageProgress. */
function toProgress(e: PullEvent | PushEvent) {
  if (e.type === 'layer') return { id: e.id, status: e.status, current: e.current ?? 0, total: e.total ?? 0 };
  if (e.type === 'resolved') return undefined;
  return { id: '', status: 'status' in e ? e.status : '', digest: e.digest, reference: e.reference, done: true, size: 'size' in e ? e.size : 0 };
}

const PULL_POLICIES = new Set<PullPolicy>(['missing', 'always', 'never']);

function pullPolicy(raw: string | undefined): PullPolicy {
  const p = (raw || 'missing') as PullPolicy;
  if (!PULL_POLICIES.has(p)) throw new ValidationError(`invalid --pull "${raw}": expected missing, always or never`);
  return p;
}

function toContainer(r: ContainerRecord) {
  return { ...r, spec: r.spec, state: r.state, networkSettings: { ipAddress: r.spec.sandbox?.ip ?? '' } };
}

function toLogLine(e: LogEntry) {
  return { stream: e.stream, data: e.data, time: e.time };
}

/** Up to this much output of one stream goes in one message of `run`'s stream. */
const RUN_OUTPUT_CHUNK = 256 * 1024;

/**
 * A batch of log lines as few messages as their order allows: a run of lines of one stream is one
 * message (with the first line's time). `run` prints the bytes only; a message per line made a chatty
 * container cost a gRPC message per line on both ends.
 */
export function mergeLogLines(batch: LogEntry[]): LogEntry[] {
  const out: LogEntry[] = [];
  let run: LogEntry[] = [];
  let size = 0;
  const flush = () => {
    if (!run.length) return;
    out.push(run.length === 1 ? run[0]! : { stream: run[0]!.stream, time: run[0]!.time, data: Buffer.concat(run.map((e) => e.data), size) });
    run = [];
    size = 0;
  };
  for (const e of batch) {
    if (run.length && (e.stream !== run[0]!.stream || size + e.data.length > RUN_OUTPUT_CHUNK)) flush();
    run.push(e);
    size += e.data.length;
  }
  flush();
  return out;
}

/**
 * Writes one message of a server stream, and when the client reads slower than we write, waits
 * until it has caught up (or is gone): a slow reader must not make the daemon buffer a whole log.
 */
async function send(call: grpc.ServerWritableStream<any, any>, message: object, signal: AbortSignal): Promise<void> {
  if (call.write(message) || signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

/** Maps domain errors to gRPC status codes; the message is the one line the CLI prints. */
function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const message = err instanceof Error ? err.message : String(err);
  let code = grpc.status.INTERNAL;
  if (err instanceof ValidationError) code = grpc.status.INVALID_ARGUMENT;
  else if (err instanceof ContainerError) {
    code = { 'not-found': grpc.status.NOT_FOUND, conflict: grpc.status.FAILED_PRECONDITION, invalid: grpc.status.INVALID_ARGUMENT, runtime: grpc.status.INTERNAL }[err.code];
  } else if (err instanceof RegistryError) {
    // Never UNAVAILABLE: to the CLI that means the daemon itself is gone, not a registry it reaches.
    code = { 'not-found': grpc.status.NOT_FOUND, unauthorized: grpc.status.PERMISSION_DENIED }[err.kind as string] ?? grpc.status.FAILED_PRECONDITION;
  } else if (err instanceof ImageError) code = /no such|not found|unknown/i.test(message) ? grpc.status.NOT_FOUND : grpc.status.INVALID_ARGUMENT;
  return { code, details: message };
}

/** An error of the request (bad input, no such image, the registry's answer), not of the daemon: not logged as one. */
function expected(err: unknown): boolean {
  return err instanceof ValidationError || err instanceof ContainerError || err instanceof ImageError;
}

type Unary = (call: grpc.ServerUnaryCall<any, any>) => Promise<unknown>;
type Streaming = (call: grpc.ServerWritableStream<any, any>) => Promise<void>;

export function nodeApiHandlers(deps: {
  containers: ContainerManager;
  images: ImageService;
  distribution: ImageDistribution;
  info: NodeInfo;
  log: Logger;
}): grpc.UntypedServiceImplementation {
  const { containers, images, distribution, log } = deps;

  const unary = (name: string, fn: Unary): grpc.handleUnaryCall<any, any> => (call, callback) => {
    fn(call).then(
      (res) => callback(null, res),
      (err) => {
        if (!expected(err)) log.error({ rpc: name, err }, 'request failed');
        callback(toStatus(err) as grpc.ServiceError);
      },
    );
  };
  const stream = (name: string, fn: Streaming): grpc.handleServerStreamingCall<any, any> => (call) => {
    fn(call).then(
      () => call.end(),
      (err) => {
        if (!expected(err)) log.error({ rpc: name, err }, 'stream failed');
        call.emit('error', toStatus(err));
      },
    );
  };

  const parseSpec = (raw: unknown): ContainerSpec =>
    validate('container spec', containerSpecSchema, withSpecDefaults((raw ?? {}) as Partial<ContainerSpec>)) as ContainerSpec;

  const abortOnCancel = (call: grpc.ServerWritableStream<any, any>) => {
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort());
    call.on('close', () => ac.abort());
    return ac.signal;
  };

  /** A pull or push of the request's `ref`, its progress streamed as ImageProgress messages. */
  const transfer = async <E extends PullEvent | PushEvent>(call: grpc.ServerWritableStream<any, any>, missing: string,
    run: (ref: string, onProgress: (e: E) => void) => Promise<unknown>): Promise<void> => {
    const { ref } = call.request as { ref: string };
    if (!ref) throw new ValidationError(missing);
    const signal = abortOnCancel(call);
    const sent: Promise<void>[] = [];
    await run(ref, (e) => { const p = toProgress(e); if (p) sent.push(send(call, p, signal)); });
    await Promise.all(sent);
  };

  return {
    Info: unary('Info', async () => {
      const all = containers.list(true);
      return {
        ...deps.info,
        containers: all.length,
        containersRunning: all.filter((c) => c.state.status === 'running').length,
        images: images.list().length,
        daemonRssBytes: process.memoryUsage.rss(),
        pid: process.pid,
      };
    }),

    ImageImport: unary('ImageImport', async (call) => {
      const { path, ref } = call.request as { path: string; ref: string };
      if (!path) throw new ValidationError('image import: a rootfs tarball path is required');
      if (!ref) throw new ValidationError('image import: a NAME[:TAG] is required');
      return { images: [toImage(await images.importRootfs(path, ref))] };
    }),
    ImageLoad: unary('ImageLoad', async (call) => {
      const { path } = call.request as { path: string };
      if (!path) throw new ValidationError('image load: a path is required');
      return { images: (await images.load(path)).map(toImage) };
    }),
    ImageList: unary('ImageList', async () => ({ images: images.list().map(toImage) })),
    ImageRemove: unary('ImageRemove', async (call) => {
      const { ref, force } = call.request as { ref: string; force: boolean };
      const inUse = containers.inUseImageIds();
      return images.remove(ref, { force, inUse: (id) => inUse.has(id) });
    }),

    ImageInspect: unary('ImageInspect', async (call) => {
      const { ref } = call.request as { ref: string };
      const img = images.resolve(ref);
      if (!img) throw new ImageError(`No such image: ${ref}`);
      return toImage(img);
    }),
    ImageTag: unary('ImageTag', async (call) => {
      const { source, target } = call.request as { source: string; target: string };
      if (!source || !target) throw new ValidationError('image tag: SOURCE and TARGET are required');
      return toImage(await images.tag(source, target));
    }),
    ImageSave: unary('ImageSave', async (call) => {
      const { refs, path, format } = call.request as { refs: string[]; path: string; format: string };
      if (!refs.length) throw new ValidationError('image save: name at least one image');
      if (!path.startsWith('/')) throw new ValidationError('image save: -o needs a file path');
      if (format && format !== 'docker' && format !== 'oci') throw new ValidationError(`image save: invalid --format "${format}": expected docker or oci`);
      await images.save(refs, path, format === 'oci' ? 'oci' : 'docker');
      return {};
    }),
    ImageHistory: unary('ImageHistory', async (call) => ({ entries: await images.history((call.request as { ref: string }).ref) })),
    ImagePrune: unary('ImagePrune', async (call) => {
      const inUse = containers.inUseImageIds();
      return images.prune({ all: (call.request as { all: boolean }).all, inUse: (id) => inUse.has(id) });
    }),
    ImagePull: stream('ImagePull', (call) => transfer(call, 'image pull: a NAME[:TAG|@DIGEST] is required',
      (ref, onProgress) => distribution.pull(ref, { onProgress }))),
    ImagePush: stream('ImagePush', (call) => transfer(call, 'image push: a NAME[:TAG] is required',
      (ref, onProgress) => distribution.push(ref, { onProgress }))),
    RegistryLogin: unary('RegistryLogin', async (call) => {
      const { registry, username, password } = call.request as { registry: string; username: string; password: string };
      if (!username || !password) throw new ValidationError('login: a username and a password are required');
      await distribution.login(registry || 'docker.io', { username, password });
      return { status: 'Login Succeeded' };
    }),
    RegistryLogout: unary('RegistryLogout', async (call) => {
      const registry = (call.request as { registry: string }).registry || 'docker.io';
      const removed = await distribution.logout(registry);
      return { status: removed ? `Removing login credentials for ${registry}` : `Not logged in to ${registry}` };
    }),

    ContainerCreate: unary('ContainerCreate', async (call) => {
      const spec = parseSpec(call.request);
      await distribution.ensure(spec.image, 'missing');
      return toContainer(await containers.create(spec));
    }),
    ContainerRun: stream('ContainerRun', async (call) => {
      const { spec: raw, detach, pull } = call.request as { spec: unknown; detach: boolean; pull: string };
      const spec = parseSpec(raw);
      const signal = abortOnCancel(call);
      // As `docker run`: a missing image is pulled first, its progress on stderr.
      const note = (text: string) => call.write({ log: { stream: 'stderr', data: Buffer.from(text), time: new Date().toISOString() } });
      await distribution.ensure(spec.image, pullPolicy(pull), {
        announce: () => note(`Unable to find image '${spec.image}' locally\n`),
        onProgress: (e) => {
          if (e.type === 'layer' && (e.status === 'Pull complete' || e.status === 'Already exists')) note(`${e.id}: ${e.status}\n`);
          else if (e.type === 'done') note(`Digest: ${e.digest}\nStatus: ${e.status}\n`);
        },
      });
      const created = await containers.create(spec);
      // Subscribe to the exit before starting, so a container that exits at once is not missed.
      const started = await containers.start(created.id).catch(async (err) => {
        if (spec.autoRemove) await containers.remove(created.id, true).catch(() => {});
        throw err;
      });
      if (detach) {
        call.write({ created: toContainer(started) });
        return;
      }
      // Take the exit (and the logs) now: a --rm container is removed right after it exits, possibly
      // before its logs are drained, and then cannot be looked up by id any more.
      const exited = containers.wait(created.id);
      const logs = containers.logBatches(created.id, { follow: true, tail: -1, signal });
      call.write({ created: toContainer(started) });
      for await (const batch of logs) {
        for (const entry of mergeLogLines(batch)) await send(call, { log: toLogLine(entry) }, signal);
      }
      const exit = await exited;
      // As docker: `run --rm` returns once the container is gone.
      await containers.removed(created.id);
      call.write({ exit: { id: created.id, exitCode: exit.exitCode, oomKilled: exit.oomKilled, error: exit.error ?? '' } });
    }),
    ContainerStart: unary('ContainerStart', async (call) => toContainer(await containers.start(call.request.id))),
    ContainerWait: unary('ContainerWait', async (call) => {
      const exit = await containers.wait(call.request.id);
      return { id: call.request.id, exitCode: exit.exitCode, oomKilled: exit.oomKilled, error: exit.error ?? '' };
    }),
    ContainerList: unary('ContainerList', async (call) => ({ containers: containers.list(call.request.all).map(toContainer) })),
    ContainerInspect: unary('ContainerInspect', async (call) => toContainer(containers.get(call.request.id))),
    ContainerStop: unary('ContainerStop', async (call) => {
      const { id, timeoutSeconds, timeoutSet } = call.request as { id: string; timeoutSeconds: number; timeoutSet: boolean };
      if (timeoutSet && timeoutSeconds < 0) throw new ValidationError('stop: the timeout must not be negative');
      return toContainer(await containers.stop(id, timeoutSet ? timeoutSeconds : undefined));
    }),
    ContainerKill: unary('ContainerKill', async (call) => toContainer(await containers.kill(call.request.id, call.request.signal || 'SIGKILL'))),
    ContainerPause: unary('ContainerPause', async (call) => toContainer(await containers.pause(call.request.id))),
    ContainerUnpause: unary('ContainerUnpause', async (call) => toContainer(await containers.unpause(call.request.id))),
    ContainerRemove: unary('ContainerRemove', async (call) => {
      await containers.remove(call.request.id, call.request.force);
      return {};
    }),
    ContainerLogs: stream('ContainerLogs', async (call) => {
      const { id, follow, tail } = call.request as { id: string; follow: boolean; tail: number };
      const signal = abortOnCancel(call);
      for await (const entry of containers.logs(id, { follow, tail, signal })) await send(call, toLogLine(entry), signal);
    }),
    ContainerExec: stream('ContainerExec', async (call) => {
      const { id, cmd, env, workingDir, user } = call.request as { id: string; cmd: string[]; env: string[]; workingDir: string; user: string };
      const child = await containers.exec(id, cmd, env, workingDir, user);
      const signal = abortOnCancel(call);
      signal.addEventListener('abort', () => child.kill('SIGKILL'));
      child.stdout!.on('data', (d: Buffer) => call.write({ output: { stream: 'stdout', data: d, time: '' } }));
      child.stderr!.on('data', (d: Buffer) => call.write({ output: { stream: 'stderr', data: d, time: '' } }));
      const code = await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
      });
      call.write({ exitCode: code });
    }),
  };
}

export function nodeApiService(): grpc.ServiceDefinition {
  return serviceClient('node.proto', 'tsswarm.node.v1.NodeAPI').service;
}
