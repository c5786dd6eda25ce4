import * as grpc from '@grpc/grpc-js';
import { loadRaftProto } from '../../../src/raft/transport/proto.js';

interface Waiter {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  deadline: number;
}

interface PutAnswers {
  ids: number[];
  indexes: number[];
  failedIds: number[];
  errors: string[];
}

/**
 * Puts over the Kv service's PutStream: concurrent callers share one long-lived stream; the puts
 * issued within one turn of the event loop go out as one message, and each resolves with its own
 * answer (its entry's index, once committed and applied on the node). Deadlines are checked by one
 * sweep, not a timer per put; a broken stream fails everything in flight on it.
 */
export class KvStreamClient {
  private readonly client: grpc.Client;
  private stream: grpc.ClientDuplexStream<object, PutAnswers> | null = null;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private batch: { puts: { key: string; value: Uint8Array }[]; ids: number[] } | null = null;
  private readonly sweeper: NodeJS.Timeout;

  constructor(readonly address: string) {
    this.client = new (loadRaftProto().Kv)(address, grpc.credentials.createInsecure());
    this.sweeper = setInterval(() => this.expire(), 20);
    this.sweeper.unref();
  }

  put(key: string, value: Uint8Array, timeoutMs = 5000): Promise<number> {
    const id = this.nextId++;
    const p = new Promise<number>((resolve, reject) => this.waiters.set(id, { resolve, reject, deadline: Date.now() + timeoutMs }));
    if (!this.batch) {
      this.batch = { puts: [], ids: [] };
      setImmediate(() => this.flush());
    }
    this.batch.puts.push({ key, value });
    this.batch.ids.push(id);
    return p;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.fail(new Error('client closed'));
    this.stream?.end();
    this.client.close();
  }

  private flush(): void {
    const b = this.batch;
    this.batch = null;
    if (!b) return;
    (this.stream ?? this.open()).write(b);
  }

  private open(): grpc.ClientDuplexStream<object, PutAnswers> {
    const c = this.client as unknown as { putStream(): grpc.ClientDuplexStream<object, PutAnswers> };
    const s = c.putStream();
    s.on('data', (a: PutAnswers) => {
      for (let i = 0; i < a.ids.length; i++) this.settle(a.ids[i]!, null, a.indexes[i]!);
      for (let i = 0; i < a.failedIds.length; i++) this.settle(a.failedIds[i]!, new Error(a.errors[i] ?? 'put failed'), 0);
    });
    const broken = (e: Error): void => {
      if (this.stream !== s) return;
      this.stream = null;
      this.fail(new Error(`put stream to ${this.address} broke: ${e.message}`));
    };
    s.on('error', broken);
    s.on('end', () => broken(new Error('ended by the server')));
    this.stream = s;
    return s;
  }

  private settle(id: number, err: Error | null, index: number): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    if (err) w.reject(err);
    else w.resolve(index);
  }

  private fail(e: Error): void {
    for (const w of this.waiters.values()) w.reject(e);
    this.waiters.clear();
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, w] of this.waiters) {
      if (w.deadline > now) continue;
      this.waiters.delete(id);
      w.reject(new Error('put timed out'));
    }
  }
}
