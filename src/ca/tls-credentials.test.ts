import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceClient } from '../rpc/proto.js';
import { createRootCA, signNodeCertificate } from './authority.js';
import { createNodeKeyAndCsr, type NodeRole } from './node-certs.js';
import { anonymousClientCredentials, CHANNEL_OPTIONS, clientCredentials, peerIdentitySync, requireRole, serverCredentials, type NodeTls } from './tls-credentials.js';

const CA = serviceClient('control.proto', 'tsswarm.swarm.v1.CA');
let server: grpc.Server;
let port = 0;
let ca: { certPem: string; keyPem: string };
const seen: (string | undefined)[] = [];

async function identity(role: NodeRole, id: string, authority = ca): Promise<NodeTls> {
  const { keyPem, csrPem } = await createNodeKeyAndCsr();
  return { caPem: authority.certPem, keyPem, certPem: await signNodeCertificate(authority, csrPem, { nodeId: id, role, clusterId: 'c1' }) };
}

beforeAll(async () => {
  ca = await createRootCA('c1');
  // Only managers may call IssueNodeCertificate in this test server; GetRootCACertificate is open.
  server = new grpc.Server({ interceptors: [requireRole('/tsswarm.swarm.v1.CA/IssueNodeCertificate', 'manager', () => ca.certPem)] });
  server.addService(CA.service, {
    GetRootCACertificate: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      try { seen.push(peerIdentitySync(call.getAuthContext(), ca.certPem).nodeId); } catch { seen.push(undefined); }
      cb(null, { certificate: Buffer.from(ca.certPem) });
    },
    IssueNodeCertificate: (_call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => cb(null, { nodeId: 'issued' }),
  });
  const own = await identity('manager', 'server');
  port = await new Promise<number>((ok, fail) => server.bindAsync('127.0.0.1:0', serverCredentials(own), (e, p) => (e ? fail(e) : ok(p))));
});
afterAll(() => server?.forceShutdown());

function call(creds: grpc.ChannelCredentials, method: string): Promise<{ code: number; details: string; res?: any }> {
  const client = new CA(`127.0.0.1:${port}`, creds, CHANNEL_OPTIONS) as grpc.Client & Record<string, Function>;
  return new Promise((resolve) => client[method]!({}, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: any) => {
    client.close();
    resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '', res });
  }));
}

describe('mutual TLS between nodes', () => {
  it('identifies the caller by its certificate, and admits callers without one', async () => {
    expect((await call(clientCredentials(await identity('worker', 'w1')), 'GetRootCACertificate')).code).toBe(0);
    expect((await call(anonymousClientCredentials(ca.certPem), 'GetRootCACertificate')).code).toBe(0);
    expect(seen).toEqual(['w1', undefined]);
  });

  it('refuses a worker, an anonymous caller and another swarm\'s manager on a manager-only method', async () => {
    const worker = await call(clientCredentials(await identity('worker', 'w1')), 'IssueNodeCertificate');
    expect(worker.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(worker.details).toMatch(/is for managers; node w1 is a worker/);
    const anonymous = await call(anonymousClientCredentials(ca.certPem), 'IssueNodeCertificate');
    expect(anonymous.code).toBe(grpc.status.PERMISSION_DENIED);
    const other = await createRootCA('c2');
    const foreign = await identity('manager', 'm9', other);
    // Its own CA cannot verify our server, so it cannot even connect with that CA; with ours it is refused.
    const res = await call(clientCredentials({ ...foreign, caPem: ca.certPem }), 'IssueNodeCertificate');
    expect(res.code).not.toBe(0);
    expect((await call(clientCredentials(await identity('manager', 'm1')), 'IssueNodeCertificate')).res.nodeId).toBe('issued');
  });
});
