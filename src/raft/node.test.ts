import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { RaftNode } from './node.js';
import { BinaryKv } from '../../testkit/raft/kv/kvmachine.js';
import { freePort } from '../../testkit/raft/kv/procs.js';
import { serverOptions } from './transport/grpc.js';

/** Several RaftNodes in this process, over real gRPC on loopback and real LevelDB directories. */
const dir = mkdtempSync(join(tmpdir(), 'tsswarm-test-raftnode-'));
const running: { node: RaftNode; server: grpc.Server }[] = [];

afterAll(async () => {
  for (const r of running) {
    await r.node.stop().catch(() => {});
    r.server.forceShutdown();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(
  id: number, port: number, members?: Map<number, string>, requestTimeoutMs?: number,
): Promise<{ node: RaftNode; kv: BinaryKv; server: grpc.Server }> {
  const server = new grpc.Server(serverOptions());
  const kv = new BinaryKv();
  const node = new RaftNode({
    id, address: `127.0.0.1:${port}`, dataDir: join(dir, `n${id}`), stateMachine: kv, server,
    tickMs: 20, electionTicks: 10, snapshotEvery: 50, snapshotKeep: 5,
    ...(members ? { initialMembers: members } : {}),
    ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
  });
  await new Promise<void>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
  await node.start();
  running.push({ node, server });
  return { node, kv, server };
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const put = (k: string, v: string): Uint8Array => BinaryKv.encodePut(k, Buffer.from(v));

describe('RaftNode over gRPC', () => {
  it('forwards proposals, serves linearizable reads, adds a learner by snapshot, promotes, transfers and removes', async () => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const members = new Map([1, 2, 3].map((id) => [id, `127.0.0.1:${ports[id - 1]}`] as const));
    const nodes = await Promise.all([1, 2, 3].map((id) => startNode(id, ports[id - 1]!, members)));
    const leader = await until('a leader', () => nodes.find((n) => n.node.isLeader()));
    const follower = nodes.find((n) => n !== leader)!;

    // a follower's proposal is forwarded and resolves with its index once applied here
    const idx = await follower.node.propose(put('x', '1'));
    expect(idx).toBeGreaterThan(3);
    expect(follower.kv.get('x')?.toString()).toBe('1');
    // a linearizable read on another follower sees it
    const other = nodes.find((n) => n !== leader && n !== follower)!;
    await other.node.read();
    expect(other.kv.get('x')?.toString()).toBe('1');

    // enough writes for snapshots and log compaction
    await Promise.all(Array.from({ length: 200 }, (_, i) => leader.node.propose(put(`k${i}`, `v${i}`))));
    await until('compaction', () => leader.node.status().firstIndex > 100);

    // a new node joins empty, as a learner: it can only catch up by snapshot
    const n4 = await startNode(4, ports[3]!);
    await leader.node.addLearner(4, `127.0.0.1:${ports[3]}`);
    expect(leader.node.status().conf.learners).toEqual([4]);
    await until('learner caught up', () => n4.kv.get('k199')?.toString() === 'v199');
    expect(n4.kv.get('x')?.toString()).toBe('1');

    await leader.node.promote(4);
    expect(leader.node.status().conf.voters).toEqual([1, 2, 3, 4]);
    await until('promotion applied on 4', () => n4.node.status().conf.voters.includes(4));

    const newLead = await leader.node.transferLeadership(4);
    expect(newLead).toBe(4);
    await until('4 leads', () => n4.node.isLeader());

    await n4.node.remove(leader.node.id);
    expect(n4.node.status().conf.voters).not.toContain(leader.node.id);
    // the cluster keeps committing without the removed member
    await n4.node.propose(put('after', 'remove'));
    await other.node.read();
    expect(other.kv.get('after')?.toString()).toBe('remove');
  }, 60_000);

  it('after a restart, does not acknowledge a new proposal with an entry proposed by its previous life', async () => {
    // ids 11..13: their own directories. Fewer entries than snapshotEvery, so a restart replays them
    const ports = [await freePort(), await freePort(), await freePort()];
    const members = new Map([11, 12, 13].map((id, i) => [id, `127.0.0.1:${ports[i]}`] as const));
    const nodes = await Promise.all([11, 12, 13].map((id, i) => startNode(id, ports[i]!, members)));
    await until('a leader', () => nodes.find((n) => n.node.isLeader()));
    const n11 = nodes[0]!;
    for (let i = 0; i < 10; i++) await n11.node.propose(put(`old${i}`, 'v'));
    for (const n of nodes) {
      await n.node.stop();
      n.server.forceShutdown();
    }
    // node 11 comes back alone: nothing can commit, so no proposal may be acknowledged; its log
    // replays its previous life's proposals, which must not be taken for the new ones
    const again = await startNode(11, ports[0]!, members, 1500);
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => again.node.propose(put(`new${i}`, 'v'))));
    expect(again.kv.get('old9')?.toString()).toBe('v');
    expect(results.map((r) => r.status)).toEqual(Array(5).fill('rejected'));
    expect(again.kv.get('new0')).toBeUndefined();
  }, 60_000);

  it('fails proposals handed to a leader that died as soon as the leader changes, not at their deadline', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const members = new Map([21, 22, 23].map((id, i) => [id, `127.0.0.1:${ports[i]}`] as const));
    const nodes = await Promise.all([21, 22, 23].map((id, i) => startNode(id, ports[i]!, members, 30_000)));
    const leader = await until('a leader', () => nodes.find((n) => n.node.isLeader()));
    const follower = nodes.find((n) => n !== leader)!;
    await follower.node.propose(put('before', 'v'));
    await leader.node.stop();
    leader.server.forceShutdown();
    // forwarded to the dead leader: lost with it; the caller hears when the survivors elect anew
    const t0 = Date.now();
    const lost = await follower.node.propose(put('lost?', 'v')).then(() => null, (e: Error) => e);
    expect(lost?.message).toMatch(/leader changed/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // and a retry goes to the new leader
    await until('a new leader', () => nodes.find((n) => n !== leader && n.node.isLeader()));
    expect(await follower.node.propose(put('after', 'v'))).toBeGreaterThan(0);
  }, 60_000);
});

describe('RaftNode when its leader dies', () => {
  it('fails forwarded proposals at once (not at their timeout), serves reads from the new leader, and force-new-cluster revives a lone survivor', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const members = new Map([31, 32, 33].map((id, i) => [id, `127.0.0.1:${ports[i]}`] as const));
    // a long request timeout: a proposal that fails quickly failed because the leader changed
    const nodes = await Promise.all([31, 32, 33].map((id, i) => startNode(id, ports[i]!, members, 30_000)));
    const leader = await until('a leader', () => nodes.find((n) => n.node.isLeader()));
    const followers = nodes.filter((n) => n !== leader);
    await followers[0]!.node.propose(put('a', '1'));
    // the leader stops answering: gone without a word, as after kill -9
    leader.server.forceShutdown();
    await leader.node.stop();
    const t0 = Date.now();
    const inFlight = followers[0]!.node.propose(put('b', '2')).then(() => 'committed', (e: Error) => e.message);
    const outcome = await inFlight;
    const elapsed = Date.now() - t0;
    // either it got through to the new leader, or it was failed as indeterminate when the leader changed
    if (outcome !== 'committed') expect(outcome).toMatch(/leader changed/);
    expect(elapsed).toBeLessThan(15_000);
    await until('a new leader', () => followers.find((n) => n.node.isLeader()));
    await followers[1]!.node.read();
    expect(followers[1]!.kv.get('a')?.toString()).toBe('1');

    // Lose the second one too: the last is stuck without quorum, then forced into a cluster of its own.
    const [survivor, lost] = followers[0]!.node.isLeader() ? [followers[0]!, followers[1]!] : [followers[1]!, followers[0]!];
    await survivor.node.propose(put('c', '3'));
    lost.server.forceShutdown();
    await lost.node.stop();
    survivor.server.forceShutdown();
    await survivor.node.stop();
    const idx = ports[nodes.indexOf(survivor)]!;
    const server = new grpc.Server(serverOptions());
    const kv = new BinaryKv();
    const revived = new RaftNode({
      id: survivor.node.id, address: `127.0.0.1:${idx}`, dataDir: join(dir, `n${survivor.node.id}`), stateMachine: kv, server,
      tickMs: 20, electionTicks: 10, forceNewCluster: true,
    });
    await new Promise<void>((res, rej) => server.bindAsync(`127.0.0.1:${idx}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
    await revived.start();
    running.push({ node: revived, server });
    await until('the survivor leads alone', () => revived.isLeader());
    expect(revived.status().conf.voters).toEqual([survivor.node.id]);
    await revived.propose(put('d', '4'));
    expect(['a', 'c', 'd'].map((k) => kv.get(k)?.toString())).toEqual(['1', '3', '4']);
  }, 60_000);

  it('after force-new-cluster, the members left out are refused when they come back, and stop instead of electing each other', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const ids = [51, 52, 53];
    const members = new Map(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`] as const));
    const nodes = await Promise.all(ids.map((id, i) => startNode(id, ports[i]!, members)));
    const leader = await until('a leader', () => nodes.find((n) => n.node.isLeader()));
    await leader.node.propose(put('before', '1'));
    // Every member goes down; one is forced into a cluster of its own.
    for (const n of nodes) { n.server.forceShutdown(); await n.node.stop(); }
    const [survivorId, ...lostIds] = ids;
    const restart = async (id: number, forceNewCluster = false) => {
      const port = ports[ids.indexOf(id)]!;
      const server = new grpc.Server(serverOptions());
      const kv = new BinaryKv();
      const removedWhy: string[] = [];
      const node = new RaftNode({
        id, address: `127.0.0.1:${port}`, dataDir: join(dir, `n${id}`), stateMachine: kv, server, tickMs: 20, electionTicks: 10,
        ...(forceNewCluster ? { forceNewCluster } : {}), onRemoved: (why) => removedWhy.push(why),
      });
      await new Promise<void>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
      await node.start();
      running.push({ node, server });
      return { node, kv, removedWhy };
    };
    const survivor = await restart(survivorId!, true);
    await until('the survivor leads alone', () => survivor.node.isLeader());
    await survivor.node.propose(put('after', '2'));
    // The two left out come back together: by their own logs they are two of three, a quorum.
    const lost = await Promise.all(lostIds.map((id) => restart(id)));
    await until('both told they were removed', () => lost.every((l) => l.removedWhy.length === 1));
    for (const l of lost) {
      expect(l.node.isLeader()).toBe(false);
      expect(l.node.removedReason()).toMatch(/removed from the swarm's raft cluster/);
      await expect(l.node.propose(put('split', 'brain'))).rejects.toThrow(/removed/);
    }
    // Well past an election timeout: still no second leader, and the survivor keeps committing.
    await new Promise((r) => setTimeout(r, 600));
    expect(lost.some((l) => l.node.isLeader())).toBe(false);
    expect(survivor.node.isLeader()).toBe(true);
    await survivor.node.propose(put('still', '3'));
    expect(survivor.node.status().conf.voters).toEqual([survivorId]);
  }, 60_000);
});
