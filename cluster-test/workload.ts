/**
 * Concurrent clients that run control-API operations over gRPC on the managers' local sockets
 * and record a history: each operation's invocation and completion times and its result. A
 * timeout or an unavailable manager is indeterminate (the write may still take effect); a refusal
 * the store decided (not found, exists, version conflict) is a definite result.
 */
import * as grpc from '@grpc/grpc-js';
import { serviceClient } from '../src/rpc/proto.js';
import type { Host } from './host.js';
import { IMAGE } from './harness.js';
import type { ServiceInput, ServiceOp, ServiceOutput } from './service-model.js';
import { Rng } from './rng.js';

const TOKEN_LABEL = 'cluster-test.token';

type Client = grpc.Client & Record<string, Function>;

function connect(host: Host): Client {
  const Ctor = serviceClient('control.proto', 'tsswarm.swarm.v1.ControlAPI');
  return new Ctor(`unix:${host.socket}`, grpc.credentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500,
  }) as Client;
}

function spec(name: string, token: string) {
  return {
    name, labels: { [TOKEN_LABEL]: token },
    task: { image: IMAGE, command: ['sleep', '3600'] },
    // No tasks: the workload exercises the replicated store, not the workers.
    mode: { replicated: { replicas: 0 } },
  };
}

/** What the call returned, or the classification of its failure. */
type Outcome = { value: any } | { definite: 'not-found' | 'exists' | 'conflict' } | { indeterminate: string };

function invoke(client: Client, method: string, req: object, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    client[method]!(req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: any) => {
      if (!err) return resolve({ value: res });
      if (err.code === grpc.status.NOT_FOUND) return resolve({ definite: 'not-found' });
      if (err.code === grpc.status.ALREADY_EXISTS) return resolve({ definite: 'exists' });
      if (err.code === grpc.status.FAILED_PRECONDITION) return resolve({ definite: 'conflict' });
      resolve({ indeterminate: `${grpc.status[err.code]}: ${err.details}` });
    });
  });
}

export interface WorkloadOptions {
  /** managers the clients talk to; client i starts on managers[i % n] and moves on after failures */
  managers: () => Host[];
  clients: number;
  /** service names the clients share (few keys: more contention, more interesting histories) */
  keys: string[];
  rng: Rng;
  timeoutMs?: number;
  /** pause between a client's operations */
  thinkMs?: number;
}

export interface WriteAck {
  name: string;
  token: string;
  /** when the write was invoked and when it was acknowledged */
  call: number;
  at: number;
  /** the manager that acknowledged it */
  via: string;
}

export class Workload {
  readonly history: ServiceOp[] = [];
  readonly acks: WriteAck[] = [];
  readonly errors = new Map<string, number>();
  private running = false;
  private loops: Promise<void>[] = [];
  private tokenSeq = 0;
  private readonly clients = new Map<string, Client>();

  constructor(private readonly opts: WorkloadOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.opts.clients; i++) this.loops.push(this.loop(i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** The first write invoked after `t` that was acknowledged (creates and updates that returned ok), for failover timing. */
  lastAckAfter(t: number): WriteAck | undefined {
    return this.acks.find((a) => a.call > t);
  }

  private client(host: Host): Client {
    let c = this.clients.get(host.socket);
    if (!c) this.clients.set(host.socket, (c = connect(host)));
    return c;
  }

  /** One recorded operation against `host`. */
  async op(host: Host, input: ServiceInput): Promise<ServiceOp> {
    const timeoutMs = this.opts.timeoutMs ?? 3000;
    const c = this.client(host);
    const call = Date.now();
    let outcome: Outcome;
    switch (input.op) {
      case 'create': outcome = await invoke(c, 'CreateService', { spec: spec(input.name, input.token) }, timeoutMs); break;
      case 'update': outcome = await invoke(c, 'UpdateService', { id: input.name, version: input.expectVersion, spec: spec(input.name, input.token) }, timeoutMs); break;
      case 'read': outcome = await invoke(c, 'GetService', { id: input.name }, timeoutMs); break;
      case 'remove': outcome = await invoke(c, 'RemoveService', { id: input.name }, timeoutMs); break;
    }
    const ret = Date.now();
    let output: ServiceOutput | undefined;
    if ('value' in outcome) {
      if (input.op === 'remove') output = { ok: true, removed: true };
      else output = { ok: true, version: Number(outcome.value.meta.version), token: outcome.value.spec.labels?.[TOKEN_LABEL] ?? '' };
    } else if ('definite' in outcome) {
      output = { ok: false, error: outcome.definite };
    } else {
      const kind = outcome.indeterminate.split(':')[0]!;
      this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
    }
    const op: ServiceOp = { input, output, call, ret: output ? ret : Infinity };
    this.history.push(op);
    if (output?.ok && (input.op === 'create' || input.op === 'update')) this.acks.push({ name: input.name, token: input.token, call, at: ret, via: host.name });
    return op;
  }

  private newToken(client: number): string {
    return `c${client}-${++this.tokenSeq}`;
  }

  private async loop(i: number): Promise<void> {
    const rng = this.opts.rng.fork(i);
    const known = new Map<string, { version: number; token: string }>();
    let target = i;
    while (this.running) {
      const managers = this.opts.managers().filter((m) => m.state === 'running');
      if (managers.length === 0) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const host = managers[target % managers.length]!;
      const name = rng.pick(this.opts.keys);
      const k = known.get(name);
      const roll = rng.next();
      let input: ServiceInput;
      if (!k || roll < 0.35) input = { op: 'read', name };
      else if (roll < 0.85) input = { op: 'update', name, expectVersion: k.version, expectToken: k.token, token: this.newToken(i) };
      else input = { op: 'remove', name };
      let op = await this.op(host, input);
      if (op.output && !op.output.ok && op.output.error === 'not-found' && input.op !== 'remove' && rng.next() < 0.7) {
        op = await this.op(host, { op: 'create', name, token: this.newToken(i) });
      }
      const out = op.output;
      if (out?.ok && 'version' in out) known.set(name, { version: out.version, token: out.token || (op.input as { token: string }).token });
      else if (!out?.ok) known.delete(name);
      // After a failure, try the next manager: as a client with a list of managers would.
      if (!out) target++;
      if (this.opts.thinkMs) await new Promise((r) => setTimeout(r, this.opts.thinkMs));
    }
  }
}
