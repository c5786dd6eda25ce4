/**
 * The model of one service object for the linearizability checker. Every write carries a token
 * (a label value) that no other write uses, so "the version I read is still current" is the same
 * as "the token I read is still current": the model is a register with compare-and-set over
 * tokens, with absence as null. Versions themselves are raft indexes the client cannot predict;
 * they are checked apart (one version per token, growing with each write of the object).
 */
import { checkPartitioned, type Explains, type Model, type Operation } from '../testkit/linearizability/linearizability.js';

export type ServiceInput =
  | { op: 'create'; name: string; token: string }
  | { op: 'update'; name: string; expectVersion: number; expectToken: string; token: string }
  | { op: 'read'; name: string }
  | { op: 'remove'; name: string };

export type ServiceOutput =
  | { ok: true; version: number; token?: string }
  | { ok: true; removed: true }
  | { ok: false; error: 'not-found' | 'exists' | 'conflict' };

export type ServiceOp = Operation<ServiceInput, ServiceOutput>;

type State = string | null;

export const serviceModel: Model<State, ServiceInput, ServiceOutput> = {
  init: () => null,
  step(state, input, output) {
    const pending = output === undefined;
    switch (input.op) {
      case 'create':
        if (pending) return state === null ? input.token : state;
        if (output.ok) return state === null ? input.token : undefined;
        return output.error === 'exists' && state !== null ? state : undefined;
      case 'update':
        if (pending) return state === input.expectToken ? input.token : state;
        if (output.ok) return state === input.expectToken ? input.token : undefined;
        if (output.error === 'not-found') return state === null ? state : undefined;
        return output.error === 'conflict' && state !== input.expectToken ? state : undefined;
      case 'remove':
        // A remove that never answered may as well have come last (or been refused): never forced.
        if (pending) return null;
        if (output.ok) return state !== null ? null : undefined;
        if (output.error === 'not-found') return state === null ? state : undefined;
        return output.error === 'conflict' && state !== null ? state : undefined;
      case 'read':
        if (pending) return state;
        if (output.ok) return 'token' in output && output.token === state && state !== null ? state : undefined;
        return output.error === 'not-found' && state === null ? state : undefined;
    }
  },
  key: (s) => (s === null ? '\u0000' : s),
};

/** The token an op wrote, if it writes one. */
const written = (op: ServiceOp): string | undefined => (op.input.op === 'create' || op.input.op === 'update' ? op.input.token : undefined);

/** A write explains the reads that returned its token and the updates that expected it. */
export const serviceExplains: Explains<ServiceInput, ServiceOutput> = (op, rest) => {
  const token = written(op);
  if (!token) return false;
  return rest.some((r) => (r.output && r.output.ok && 'token' in r.output && r.output.token === token) || (r.input.op === 'update' && r.input.expectToken === token));
};

export interface HistoryVerdict {
  ops: number;
  indeterminate: number;
  linearizable: boolean;
  violations: number;
  /** the service whose history failed, and its minimal failing sub-history */
  failing?: { service: string; history: string[] };
  /** acknowledged writes that a later read or the final state contradicts */
  lostAcknowledgedWrites: number;
  /** tokens seen with two different versions, or versions that went backwards */
  versionAnomalies: string[];
}

export function describeOp(op: ServiceOp, t0: number): string {
  const t = (x: number) => (x === Infinity ? '∞' : `${((x - t0) / 1000).toFixed(3)}s`);
  const i = op.input;
  const what = i.op === 'create' ? `create ${i.name} token=${i.token}`
    : i.op === 'update' ? `update ${i.name} if version=${i.expectVersion} (token ${i.expectToken}) token=${i.token}`
      : `${i.op} ${i.name}`;
  const o = op.output;
  const out = o === undefined ? 'indeterminate (timeout or unavailable)' : !o.ok ? `error ${o.error}` : 'removed' in o ? 'ok' : `ok version=${o.version}${o.token ? ` token=${o.token}` : ''}`;
  return `[${t(op.call)} .. ${t(op.ret)}] ${what} -> ${out}`;
}

/** Checks a history of service operations: linearizability per service, lost writes, versions. */
export function checkServiceHistory(ops: ServiceOp[], opts: { minimize?: boolean; minimizeBudgetMs?: number } = {}): HistoryVerdict {
  // A read that never answered constrains nothing.
  const relevant = ops.filter((op) => !(op.input.op === 'read' && op.output === undefined));
  const t0 = Math.min(...ops.map((o) => o.call));
  const result = checkPartitioned(serviceModel, relevant, (op) => op.input.name, serviceExplains, opts);
  return {
    ops: ops.length,
    indeterminate: ops.filter((o) => o.output === undefined).length,
    linearizable: result.ok,
    violations: result.ok ? 0 : 1,
    ...(result.ok ? {} : { failing: { service: result.partition!, history: (result.minimal ?? []).sort((a, b) => a.call - b.call).map((o) => describeOp(o, t0)) } }),
    lostAcknowledgedWrites: lostWrites(relevant),
    versionAnomalies: versionAnomalies(relevant),
  };
}

/**
 * An acknowledged write is lost when a read that started after it was acknowledged returns a
 * token (or absence) that only writes finished before it could have left, i.e. the read went back
 * in time past an acknowledged write.
 */
function lostWrites(ops: ServiceOp[]): number {
  const byName = new Map<string, ServiceOp[]>();
  for (const op of ops) {
    let list = byName.get(op.input.name);
    if (!list) byName.set(op.input.name, (list = []));
    list.push(op);
  }
  let lost = 0;
  for (const list of byName.values()) {
    const writerOf = new Map<string, ServiceOp>();
    for (const op of list) {
      const t = written(op);
      if (t) writerOf.set(t, op);
    }
    const reads = list.filter((r) => r.input.op === 'read' && r.output).sort((a, b) => a.call - b.call);
    const removes = list.filter((d) => d.input.op === 'remove' && (!d.output || d.output.ok));
    for (const w of list) {
      if (!written(w) || !w.output?.ok) continue;
      // reads invoked after w was acknowledged: binary search for the first
      let lo = 0;
      let hi = reads.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (reads[mid]!.call <= w.ret) lo = mid + 1;
        else hi = mid;
      }
      const removableAfter = removes.some((d) => d.ret > w.call);
      for (let i = lo; i < reads.length; i++) {
        const out = reads[i]!.output!;
        const stale = out.ok && 'token' in out
          ? (() => { const x = writerOf.get(out.token!); return x !== undefined && x !== w && x.ret < w.call; })()
          : !out.ok && out.error === 'not-found' && !removableAfter;
        if (stale) {
          lost++;
          break;
        }
      }
    }
  }
  return lost;
}

function versionAnomalies(ops: ServiceOp[]): string[] {
  const versionOf = new Map<string, number>();
  const out: string[] = [];
  for (const op of ops) {
    const o = op.output;
    if (!o || !o.ok || !('version' in o)) continue;
    const token = o.token ?? written(op);
    if (!token) continue;
    const seen = versionOf.get(token);
    if (seen !== undefined && seen !== o.version) out.push(`token ${token} seen at versions ${seen} and ${o.version}`);
    versionOf.set(token, o.version);
  }
  // an update's new version is above the version it replaced
  for (const op of ops) {
    if (op.input.op === 'update' && op.output?.ok && 'version' in op.output && op.output.version <= op.input.expectVersion) {
      out.push(`update of ${op.input.name} from version ${op.input.expectVersion} returned version ${op.output.version}`);
    }
  }
  return out;
}
