import * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../core/types.js';
import { decodeBatch, encodeBatch, type RaftBatch } from './codec.js';
import { approxSize } from './convert.js';

/** The Raft service of proto/raft.proto, with the batch codec written for the core's types. */
const RAFT_SERVICE: grpc.ServiceDefinition = {
  stream: {
    path: '/tsswarm.raft.Raft/Stream',
    requestStream: true,
    responseStream: false,
    requestSerialize: encodeBatch,
    requestDeserialize: decodeBatch,
    responseSerialize: () => Buffer.alloc(0),
    responseDeserialize: () => ({}),
    originalName: 'stream',
  },
};
const RaftClient = grpc.makeGenericClientConstructor(RAFT_SERVICE, 'Raft');

export interface TransportOptions {
  id: NodeId;
  /** called for every message received from a peer */
  onMessage: (m: Message) => void;
  /** our own raft address, sent with every batch */
  address?: string;
  /** called when a message is dropped before reaching the wire (full queue, oversized, peer unknown) */
  onDrop?: (reason: string, to: NodeId) => void;
  /** e.g. grpc.credentials.createSsl(...) for mutual TLS; insecure by default */
  channelCredentials?: grpc.ChannelCredentials;
  /** messages queued per peer before new ones are dropped (Raft retransmits what is lost) */
  maxQueue?: number;
  /** gRPC message cap; a batch is closed well before it */
  maxMessageBytes?: number;
  /**
   * Whether a sender is a member this node knows was removed from the cluster: its messages are
   * refused, and it is told so (a manager left out by --force-new-cluster must not campaign on).
   */
  isRemoved?: (from: NodeId) => boolean;
  /** called when a peer refuses our messages because it knows this node was removed */
  onRemoved?: (by: NodeId, why: string) => void;
}

/** The refusal a removed member gets; the sender recognises it by this text. */
export const REMOVED_MEMBER = 'raft member removed from the cluster';

type Batch = RaftBatch;

/**
 * Sends to one peer over one long-lived client stream. Messages queue while a write is pending and
 * go out together in the next batch; the queue is bounded, which is the backpressure: when the
 * peer or the network is slow, new messages are dropped instead of growing memory.
 */
class PeerSender {
  private queue: Message[] = [];
  private stream: grpc.ClientWritableStream<Batch> | null = null;
  private client: grpc.Client | null = null;
  private waitingDrain = false;
  private scheduled = false;
  private retryAt = 0;
  private closed = false;

  constructor(
    readonly peer: NodeId,
    public address: string,
    private readonly t: GrpcTransport,
  ) {}

  enqueue(m: Message): void {
    if (this.closed) return;
    if (this.queue.length >= this.t.maxQueue) return this.t.drop('peer queue full', this.peer);
    if (approxSize(m) > this.t.maxBatchBytes) return this.t.drop('message over the size cap', this.peer);
    this.queue.push(m);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.waitingDrain) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || this.queue.length === 0) return;
    const now = Date.now();
    if (now < this.retryAt) {
      // the peer was unreachable a moment ago: do not spin reconnecting, let raft retransmit later
      this.queue.length = 0;
      return;
    }
    const stream = this.stream ?? this.open();
    while (this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || bytes + approxSize(this.queue[n]!) <= this.t.maxBatchBytes)) {
        bytes += approxSize(this.queue[n]!);
        n++;
      }
      const messages = n === this.queue.length ? this.queue : this.queue.slice(0, n);
      this.queue = n === this.queue.length ? [] : this.queue.slice(n);
      const ok = stream.write({ from: this.t.id, messages, address: this.t.address });
      if (!ok) {
        this.waitingDrain = true;
        stream.once('drain', () => {
          this.waitingDrain = false;
          this.schedule();
        });
        return;
      }
    }
  }

  private open(): grpc.ClientWritableStream<Batch> {
    if (!this.client) {
      this.client = new this.t.RaftClient(this.address, this.t.credentials, {
        'grpc.max_send_message_length': this.t.maxMessageBytes,
        'grpc.max_receive_message_length': this.t.maxMessageBytes,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
      });
    }
    const client = this.client as unknown as { stream(cb: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<Batch> };
    const s = client.stream((err) => {
      if (this.stream === s) this.stream = null;
      if (err && !this.closed) this.retryAt = Date.now() + 50;
      if (err?.code === grpc.status.FAILED_PRECONDITION && err.details?.startsWith(REMOVED_MEMBER)) this.t.removedBy(this.peer, err.details);
    });
    s.on('error', () => {});
    this.stream = s;
    return s;
  }

  /** Forget the connection (peer moved or restarted). */
  reset(address?: string): void {
    this.stream?.end();
    this.stream = null;
    if (address && address !== this.address) {
      this.client?.close();
      this.client = null;
      this.address = address;
    }
    this.retryAt = 0;
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.stream?.end();
    this.stream = null;
    this.client?.close();
    this.client = null;
  }
}

/** The gRPC transport between raft peers. Credentials come from the caller (mutual TLS later). */
export class GrpcTransport {
  readonly id: NodeId;
  readonly maxQueue: number;
  readonly maxMessageBytes: number;
  readonly maxBatchBytes: number;
  readonly credentials: grpc.ChannelCredentials;
  readonly RaftClient: grpc.ServiceClientConstructor = RaftClient;
  readonly address: string;
  private readonly peers = new Map<NodeId, PeerSender>();
  private readonly onMessage: (m: Message) => void;
  private readonly onDrop: (reason: string, to: NodeId) => void;
  private readonly isRemoved: (from: NodeId) => boolean;
  private readonly onRemoved: (by: NodeId, why: string) => void;

  constructor(opts: TransportOptions) {
    this.id = opts.id;
    this.maxQueue = opts.maxQueue ?? 8192;
    this.maxMessageBytes = opts.maxMessageBytes ?? 16 << 20;
    this.maxBatchBytes = Math.floor(this.maxMessageBytes / 2);
    this.credentials = opts.channelCredentials ?? grpc.credentials.createInsecure();
    this.onMessage = opts.onMessage;
    this.address = opts.address ?? '';
    this.onDrop = opts.onDrop ?? (() => {});
    this.isRemoved = opts.isRemoved ?? (() => false);
    this.onRemoved = opts.onRemoved ?? (() => {});
  }

  /** Adds the Raft service to a server the caller owns (and binds with its own ServerCredentials). */
  register(server: grpc.Server): void {
    server.addService(RAFT_SERVICE, {
      stream: (call: grpc.ServerReadableStream<Batch, object>, cb: grpc.sendUnaryData<object>) => {
        let refused = false;
        call.on('data', (b: Batch) => {
          if (refused) return;
          if (this.isRemoved(b.from)) {
            refused = true;
            cb({ code: grpc.status.FAILED_PRECONDITION, details: `${REMOVED_MEMBER}: member ${b.from} was removed; ${this.id} will not take its messages` });
            return;
          }
          // answers need a route back even to a sender our membership does not name yet
          if (b.address && b.from > 0 && !this.peers.has(b.from)) this.setPeer(b.from, b.address);
          const ms = b.messages;
          for (let i = 0; i < ms.length; i++) this.onMessage(ms[i]!);
        });
        call.on('end', () => { if (!refused) cb(null, {}); });
        call.on('error', () => {});
      },
    });
  }

  setPeer(id: NodeId, address: string): void {
    if (id === this.id) return;
    const p = this.peers.get(id);
    if (p) {
      if (p.address !== address) p.reset(address);
      return;
    }
    this.peers.set(id, new PeerSender(id, address, this));
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id);
  }

  send(msgs: Message[]): void {
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      const p = this.peers.get(m.to);
      if (!p) this.drop('no address for peer', m.to);
      else p.enqueue(m);
    }
  }

  removedBy(peer: NodeId, why: string): void {
    this.onRemoved(peer, why);
  }

  drop(reason: string, to: NodeId): void {
    this.onDrop(reason, to);
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }
}

export function serverOptions(maxMessageBytes = 16 << 20): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  };
}
