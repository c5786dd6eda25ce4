import * as grpc from '@grpc/grpc-js';
import { kvService } from './kvcodec.js';

export interface KvStatus {
  id: number; role: string; term: number; leader: number; commit: number; applied: number;
  lastIndex: number; digest: string; keys: number;
  rssBytes: number; heapUsedBytes: number; externalBytes: number;
}

type Unary<Req, Res> = (req: Req, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
interface KvStub extends grpc.Client {
  put: Unary<{ key: string; value: Uint8Array }, { index: number }>;
  get: Unary<{ key: string }, { found: boolean; value: Buffer }>;
  status: Unary<{ noDigest?: boolean }, KvStatus>;
}

/** Client of the test/benchmark KV service: one channel per node, unary calls with deadlines. */
export class KvClient {
  private readonly stubs: KvStub[];

  constructor(readonly addresses: string[]) {
    const Ctor = grpc.makeGenericClientConstructor(kvService(), 'Kv');
    this.stubs = addresses.map((a) => new Ctor(a, grpc.credentials.createInsecure()) as unknown as KvStub);
  }

  put(node: number, key: string, value: Uint8Array, timeoutMs = 5000): Promise<number> {
    return new Promise((resolve, reject) =>
      this.stubs[node]!.put({ key, value }, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res.index))),
    );
  }

  get(node: number, key: string, timeoutMs = 5000): Promise<Buffer | null> {
    return new Promise((resolve, reject) =>
      this.stubs[node]!.get({ key }, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res.found ? res.value : null))),
    );
  }

  status(node: number, timeoutMs = 1000, noDigest = false): Promise<KvStatus> {
    return new Promise((resolve, reject) =>
      this.stubs[node]!.status({ noDigest }, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  close(): void {
    for (const s of this.stubs) s.close();
  }
}
