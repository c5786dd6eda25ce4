/**
 * The replicated store: every manager applies the same committed proposals in the same order and so
 * holds the same objects. Apply is deterministic (the proposer stamps the time; versions are raft
 * indexes) and all-or-nothing per proposal, with compare-and-set on updates so that concurrent
 * writers never overwrite each other blindly.
 */
import { OBJECT_KINDS, type AnyObject, type ObjectKind, type ObjectTypes, type TaskObject } from '../../api/objects.js';

export type Action =
  | { op: 'create'; kind: ObjectKind; object: AnyObject }
  /** `expectVersion`: the meta.version the writer read; the update fails if the object moved since. */
  | { op: 'update'; kind: ObjectKind; object: AnyObject; expectVersion: number }
  | { op: 'delete'; kind: ObjectKind; id: string; expectVersion?: number };

export interface Proposal {
  actions: Action[];
  /** Wall-clock time at the proposer, so every manager stamps the same createdAt/updatedAt. */
  time: string;
}

export type StoreErrorCode = 'not-found' | 'exists' | 'conflict' | 'invalid';

export class StoreError extends Error {
  constructor(message: string, readonly code: StoreErrorCode) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface StoreEvent {
  op: 'create' | 'update' | 'delete';
  kind: ObjectKind;
  object: AnyObject;
  old?: AnyObject;
  version: number;
}

export type ApplyResult = { ok: true; objects: AnyObject[] } | { ok: false; error: StoreError };

type Tables = { [K in ObjectKind]: Map<string, ObjectTypes[K]> };

/** Objects whose names are unique cluster-wide, and where their name lives. */
const NAMED: Partial<Record<ObjectKind, (o: AnyObject) => string>> = {
  service: (o) => (o as ObjectTypes['service']).spec.name,
  network: (o) => (o as ObjectTypes['network']).spec.name,
};

export class ClusterStore {
  private tables: Tables = emptyTables();
  private tasksByService = new Map<string, Set<string>>();
  private tasksByNode = new Map<string, Set<string>>();
  private listeners = new Set<(events: StoreEvent[]) => void>();
  /** Raft index of the last applied proposal. */
  appliedIndex = 0;

  get<K extends ObjectKind>(kind: K, id: string): ObjectTypes[K] | undefined {
    return this.tables[kind].get(id) as ObjectTypes[K] | undefined;
  }

  list<K extends ObjectKind>(kind: K): ObjectTypes[K][] {
    return [...this.tables[kind].values()] as ObjectTypes[K][];
  }

  count(kind: ObjectKind): number {
    return this.tables[kind].size;
  }

  findByName<K extends 'service' | 'network'>(kind: K, name: string): ObjectTypes[K] | undefined {
    const nameOf = NAMED[kind]!;
    for (const o of this.tables[kind].values()) if (nameOf(o) === name) return o as ObjectTypes[K];
    return undefined;
  }

  tasksOfService(serviceId: string): TaskObject[] {
    return [...(this.tasksByService.get(serviceId) ?? [])].map((id) => this.tables.task.get(id)!);
  }

  tasksOfNode(nodeId: string): TaskObject[] {
    return [...(this.tasksByNode.get(nodeId) ?? [])].map((id) => this.tables.task.get(id)!);
  }

  /** Calls `listener` with the events of every applied proposal; returns the unsubscribe. */
  watch(listener: (events: StoreEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Applies one committed proposal at raft index `index`. Checks every action against the state
   * the earlier actions of the same proposal leave, and changes nothing unless all pass.
   */
  apply(index: number, proposal: Proposal): ApplyResult {
    if (index <= this.appliedIndex) {
      return { ok: false, error: new StoreError(`proposal at index ${index} already applied (at ${this.appliedIndex})`, 'conflict') };
    }
    this.appliedIndex = index;
    const staged = new Map<string, AnyObject | null>(); // kind/id -> new value (null = deleted)
    const key = (kind: ObjectKind, id: string) => `${kind}/${id}`;
    const current = (kind: ObjectKind, id: string): AnyObject | undefined => {
      const k = key(kind, id);
      return staged.has(k) ? (staged.get(k) ?? undefined) : this.tables[kind].get(id);
    };
    const events: StoreEvent[] = [];
    const results: AnyObject[] = [];
    try {
      for (const a of proposal.actions) {
        if (!OBJECT_KINDS.includes(a.kind)) throw new StoreError(`unknown object kind "${a.kind}"`, 'invalid');
        if (a.op === 'delete') {
          const old = current(a.kind, a.id);
          if (!old) throw new StoreError(`${a.kind} ${a.id} not found`, 'not-found');
          if (a.expectVersion !== undefined && old.meta.version !== a.expectVersion) {
            throw new StoreError(`${a.kind} ${a.id} changed since version ${a.expectVersion} (now ${old.meta.version})`, 'conflict');
          }
          staged.set(key(a.kind, a.id), null);
          events.push({ op: 'delete', kind: a.kind, object: old, version: index });
          continue;
        }
        const id = a.object.id;
        if (!id) throw new StoreError(`${a.kind}: an id is required`, 'invalid');
        const old = current(a.kind, id);
        if (a.op === 'create' && old) throw new StoreError(`${a.kind} ${id} already exists`, 'exists');
        if (a.op === 'update') {
          if (!old) throw new StoreError(`${a.kind} ${id} not found`, 'not-found');
          if (old.meta.version !== a.expectVersion) {
            throw new StoreError(`update out of sequence: ${a.kind} ${id} changed since version ${a.expectVersion} (now ${old.meta.version})`, 'conflict');
          }
        }
        const nameOf = NAMED[a.kind];
        if (nameOf) {
          const name = nameOf(a.object);
          const clash = this.nameHolder(a.kind, name, staged);
          if (clash && clash !== id) throw new StoreError(`${a.kind} name "${name}" is already in use by ${a.kind} ${clash}`, 'exists');
        }
        const obj = {
          ...a.object,
          meta: { version: index, createdAt: old?.meta.createdAt ?? proposal.time, updatedAt: proposal.time },
        } as AnyObject;
        staged.set(key(a.kind, id), obj);
        events.push({ op: a.op, kind: a.kind, object: obj, old, version: index });
        results.push(obj);
      }
    } catch (err) {
      if (err instanceof StoreError) return { ok: false, error: err };
      throw err;
    }
    for (const [k, v] of staged) {
      const slash = k.indexOf('/');
      const kind = k.slice(0, slash) as ObjectKind;
      const id = k.slice(slash + 1);
      const old = this.tables[kind].get(id);
      if (kind === 'task') this.reindexTask(old as TaskObject | undefined, v as TaskObject | null);
      if (v) (this.tables[kind] as Map<string, AnyObject>).set(id, v);
      else this.tables[kind].delete(id);
    }
    for (const l of this.listeners) l(events);
    return { ok: true, objects: results };
  }

  /** The whole state, for raft's log compaction and for managers that join late. */
  snapshot(): Uint8Array {
    const data = { appliedIndex: this.appliedIndex, objects: Object.fromEntries(OBJECT_KINDS.map((k) => [k, this.list(k)])) };
    return new TextEncoder().encode(JSON.stringify(data));
  }

  restore(bytes: Uint8Array): void {
    const data = JSON.parse(new TextDecoder().decode(bytes)) as { appliedIndex: number; objects: Record<ObjectKind, AnyObject[]> };
    this.tables = emptyTables();
    this.tasksByService.clear();
    this.tasksByNode.clear();
    for (const kind of OBJECT_KINDS) {
      for (const o of data.objects[kind] ?? []) {
        (this.tables[kind] as Map<string, AnyObject>).set(o.id, o);
        if (kind === 'task') this.reindexTask(undefined, o as TaskObject);
      }
    }
    this.appliedIndex = data.appliedIndex;
  }

  private nameHolder(kind: ObjectKind, name: string, staged: Map<string, AnyObject | null>): string | undefined {
    const nameOf = NAMED[kind]!;
    for (const [k, v] of staged) {
      if (v && k.startsWith(`${kind}/`) && nameOf(v) === name) return v.id;
    }
    for (const o of this.tables[kind].values()) {
      const s = staged.get(`${kind}/${o.id}`);
      if (s === null) continue; // deleted in this proposal
      if (nameOf(s ?? o) === name) return o.id;
    }
    return undefined;
  }

  private reindexTask(old: TaskObject | undefined, next: TaskObject | null): void {
    if (old) {
      this.tasksByService.get(old.serviceId)?.delete(old.id);
      if (old.nodeId) this.tasksByNode.get(old.nodeId)?.delete(old.id);
    }
    if (next) {
      addTo(this.tasksByService, next.serviceId, next.id);
      if (next.nodeId) addTo(this.tasksByNode, next.nodeId, next.id);
    }
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(id);
}

function emptyTables(): Tables {
  return { node: new Map(), service: new Map(), task: new Map(), network: new Map(), cluster: new Map() };
}

export function encodeProposal(p: Proposal): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(p));
}

export function decodeProposal(bytes: Uint8Array): Proposal {
  return JSON.parse(new TextDecoder().decode(bytes)) as Proposal;
}
