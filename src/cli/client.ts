/** The CLI's connection to a daemon: -H unix://PATH, else $TSSWARM_HOST, else the default socket. */
import type * as grpc from '@grpc/grpc-js';
import type { BundledProto } from '../rpc/descriptor.js';

/**
 * In the bundled CLI (scripts/build-cli.mjs) node.proto's and control.proto's descriptors and message
 * codecs, so that no .proto text is parsed and no codec generated at start; undefined when this module
 * runs unbundled (tests, bench).
 */
declare const TSSWARM_PROTO: Record<string, BundledProto> | undefined;

// grpc.status.UNAVAILABLE, without loading gRPC before a command needs it.
const UNAVAILABLE = 14;

export const DEFAULT_SOCKET = '/run/tsswarm/tsswarm.sock';

export function daemonAddress(host: string | undefined): string {
  const h = host || process.env.TSSWARM_HOST || `unix://${DEFAULT_SOCKET}`;
  if (h.startsWith('unix://')) return `unix:${h.slice('unix://'.length)}`;
  if (h.startsWith('/')) return `unix:${h}`;
  throw new Error(`unsupported daemon address "${h}": expected unix:///path/to/socket`);
}

/** A failure the daemon reported (or could not be reached for), ready to print as one line. */
export class DaemonError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = 'DaemonError';
  }
}

/** `midStream`: the daemon had already answered on this call, so it was reached and then lost. */
function describe(err: grpc.ServiceError, address: string, midStream = false): DaemonError {
  if (err.code === UNAVAILABLE && !err.metadata?.get('tsswarm-answered').length) {
    const at = address.replace(/^unix:/, 'unix://');
    return new DaemonError(midStream
      ? `lost the connection to the tsswarm daemon at ${at} (${err.details}); what it was doing may go on without us (see tsswarm ps -a)`
      : `cannot connect to the tsswarm daemon at ${at}: is it running? (${err.details})`, err.code);
  }
  return new DaemonError(err.details || err.message, err.code);
}

/** The services a daemon serves on its socket: the node's own, and the swarm's. */
export const SERVICES = {
  node: ['node.proto', 'tsswarm.node.v1.NodeAPI'],
  swarm: ['control.proto', 'tsswarm.swarm.v1.SwarmAPI'],
  control: ['control.proto', 'tsswarm.swarm.v1.ControlAPI'],
} as const;

async function clientConstructor(file: string, name: string): Promise<grpc.ServiceClientConstructor> {
  if (typeof TSSWARM_PROTO === 'object') {
    const { clientFromBundledProto } = await import('../rpc/descriptor.js');
    return clientFromBundledProto(TSSWARM_PROTO[file]!, name);
  }
  const { serviceClient } = await import('../rpc/proto.js');
  return serviceClient(file, name);
}

type ServiceClient = grpc.Client & Record<string, Function>;

/** A client of one service; gRPC is loaded and the channel made on the first call, not before. */
export class DaemonClient {
  private client: ServiceClient | undefined;
  private opening: Promise<ServiceClient> | undefined;
  private closed = false;

  constructor(readonly address: string, private readonly service: keyof typeof SERVICES = 'node') {}

  private connect(): Promise<ServiceClient> {
    return (this.opening ??= this.open());
  }

  private async open(): Promise<ServiceClient> {
    const [file, name] = SERVICES[this.service];
    const [grpcJs, Ctor] = await Promise.all([import('@grpc/grpc-js'), clientConstructor(file, name)]);
    const client = new Ctor(this.address, grpcJs.credentials.createInsecure(), {
      // The socket is local: fail fast instead of waiting for reconnect backoff.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    }) as ServiceClient;
    if (this.closed) client.close();
    return (this.client = client);
  }

  /** Unary call; "connection refused" and friends become one line naming the socket. */
  async call<T = any>(method: string, request: object): Promise<T> {
    const client = await this.connect();
    return new Promise((resolve, reject) => {
      client[method]!(request, (err: grpc.ServiceError | null, res: T) => {
        if (err) reject(describe(err, this.address));
        else resolve(res);
      });
    });
  }

  /** A server stream as an async iterator, with errors mapped to DaemonError. */
  async *stream<T = any>(method: string, request: object): AsyncGenerator<T> {
    const client = await this.connect();
    const call = client[method]!(request) as grpc.ClientReadableStream<T>;
    let received = false;
    try {
      for await (const msg of call) {
        received = true;
        yield msg as T;
      }
    } catch (err) {
      throw describe(err as grpc.ServiceError, this.address, received);
    } finally {
      call.cancel();
    }
  }

  close(): void {
    this.closed = true;
    this.client?.close();
  }
}
