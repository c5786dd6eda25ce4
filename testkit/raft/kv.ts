/**
 * The key-value state machine used by simulations and the real-process test. Commands carry a unique
 * op id; the machine remembers applied ids so a proposal that reached the log twice (a duplicated
 * forward) takes effect once.
 */
export type KvCommand = { id: string; op: 'put'; key: string; value: string } | { id: string; op: 'get'; key: string };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return enc.encode(JSON.stringify(c));
}

export function decodeCommand(data: Uint8Array): KvCommand | null {
  if (data.length === 0) return null;
  try {
    return JSON.parse(dec.decode(data)) as KvCommand;
  } catch {
    return null;
  }
}

export class KvMachine {
  kv = new Map<string, string>();
  seen = new Set<string>();

  /** Applies a command; returns the value read (get) or null. */
  apply(c: KvCommand): string | null {
    if (c.op === 'get') return this.kv.get(c.key) ?? null;
    if (!this.seen.has(c.id)) {
      this.seen.add(c.id);
      this.kv.set(c.key, c.value);
    }
    return null;
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ kv: [...this.kv], seen: [...this.seen] }));
  }

  restore(data: Uint8Array): void {
    this.kv = new Map();
    this.seen = new Set();
    if (data.length === 0) return;
    const o = JSON.parse(dec.decode(data)) as { kv: [string, string][]; seen: string[] };
    this.kv = new Map(o.kv);
    this.seen = new Set(o.seen);
  }
}
