/** SwarmAPI on the local socket: what `tsswarm swarm init|join|leave|join-token|inspect` asks. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import { toGrpcStatus } from '../manager/grpc-services.js';
import { JoinTokenError } from '../ca/join-token.js';
import { SwarmError, type SwarmNode } from './swarm.js';

export const swarmApiService = () => serviceClient('control.proto', 'tsswarm.swarm.v1.SwarmAPI').service;

export function swarmApiHandlers(swarm: SwarmNode, logger: Logger): grpc.UntypedServiceImplementation {
  const unary = (name: string, fn: (req: any) => Promise<unknown>): grpc.handleUnaryCall<any, any> => (call, callback) => {
    fn(call.request).then((res) => callback(null, res), (err) => {
      if (err instanceof SwarmError) {
        const code = { conflict: grpc.status.FAILED_PRECONDITION, invalid: grpc.status.INVALID_ARGUMENT, unavailable: grpc.status.UNAVAILABLE }[err.code];
        callback({ code, details: err.message } as grpc.ServiceError);
        return;
      }
      if (!(err instanceof JoinTokenError)) logger.error({ rpc: name, err }, 'swarm request failed');
      callback(toGrpcStatus(err) as grpc.ServiceError);
    });
  };
  return {
    Init: unary('Init', (r) => swarm.init({ advertiseAddr: r.advertiseAddr, listenAddr: r.listenAddr, forceNewCluster: r.forceNewCluster, heartbeatMs: r.dispatcherHeartbeatMs, certExpiryMs: r.certExpiryMs, taskHistoryLimit: r.taskHistoryLimit })),
    Join: unary('Join', (r) => swarm.join({ token: r.token, remoteAddr: r.remoteAddr, advertiseAddr: r.advertiseAddr, listenAddr: r.listenAddr })),
    Leave: unary('Leave', async (r) => { await swarm.leave(r.force); return {}; }),
    Inspect: unary('Inspect', async () => swarm.info()),
    JoinToken: unary('JoinToken', (r) => swarm.joinToken(r.role, r.rotate)),
    Update: unary('Update', async (r) => { await swarm.update({ taskHistoryLimit: r.taskHistoryLimit, autoRebalance: r.autoRebalance }); return {}; }),
  };
}
