/** The CLI's connection to a daemon: -H unix://PATH, else $TSSWARM_HOST, else the default socket. */
import * as grpc from '@grpc/grpc-js';
import { serviceClient } from '../api/proto.js';

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

function describe(err: grpc.ServiceError, address: string): DaemonError {
  if (err.code === grpc.status.UNAVAILABLE && !err.metadata?.get('tsswarm-answered').length) {
    return new DaemonError(`cannot connect to the tsswarm daemon at ${address.replace(/^unix:/, 'unix://')}: is it running? (${err.details})`, err.code);
  }
  return new DaemonError(err.details || err.message, err.code);
}

/** The services a daemon serves on its socket: the node's own, and the swarm's. */
export const SERVICES = {
  node: ['node.proto', 'tsswarm.node.v1.NodeAPI'],
  swarm: ['control.proto', 'tsswarm.swarm.v1.SwarmAPI'],
  control: ['control.proto', 'tsswarm.swarm.v1.ControlAPI'],
} as const;

export class DaemonClient {
  private readonly client: grpc.Client & Record<string, Function>;

  constructor(readonly address: string, service: keyof typeof SERVICES = 'node') {
    const [file, name] = SERVICES[service];
    const Ctor = serviceClient(file, name);
    this.client = new Ctor(address, grpc.credentials.createInsecure(), {
      // The socket is local: fail fast instead of waiting for reconnect backoff.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    }) as grpc.Client & Record<string, Function>;
  }

  /** Unary call; "connection refused" and friends become one line naming the socket. */
  call<T = any>(method: string, request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method]!(request, (err: grpc.ServiceError | null, res: T) => {
        if (err) reject(describe(err, this.address));
        else resolve(res);
      });
    });
  }

  /** A server stream as an async iterator, with errors mapped to DaemonError. */
  async *stream<T = any>(method: string, request: object): AsyncGenerator<T> {
    const call = this.client[method]!(request) as grpc.ClientReadableStream<T>;
    try {
      for await (const msg of call) yield msg as T;
    } catch (err) {
      throw describe(err as grpc.ServiceError, this.address);
    } finally {
      call.cancel();
    }
  }

  close(): void {
    this.client.close();
  }
}
