/**
 * What the image store's sweep must leave alone while a pull runs outside the store's lock: a pull
 * downloads and unpacks for seconds to minutes, so it no longer holds the lock for its whole length
 * (other pulls and an `rm` go on meanwhile) and takes it only to plan and to commit. Until its commit
 * names them, the layers and blobs it found or put in place are referenced by nothing, and its work
 * in tmp/ by no one: a lease pins both, and the sweep skips what is pinned.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from './digest.js';

export class Lease {
  private readonly pinned: Digest[] = [];
  private seq = 0;
  private released = false;

  constructor(private readonly owner: Leases, readonly name: string, readonly dir: string) {}

  /** A fresh path inside this lease's own temp dir. */
  tmp = (): string => join(this.dir, String(this.seq++));

  /** Keeps `d` (a layer's diff_id or a blob's digest) from being swept until release. */
  pin(d: Digest): void {
    if (this.released) throw new Error('image store: pin on a released lease');
    this.pinned.push(d);
    this.owner.count(d, 1);
  }

  /** Unpins everything and removes the temp dir; what the commit named is referenced by then. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const d of this.pinned) this.owner.count(d, -1);
    await rm(this.dir, { recursive: true, force: true });
    this.owner.close(this.name);
  }
}

export class Leases {
  private readonly pins = new Map<Digest, number>();
  private readonly open = new Set<string>();
  private seq = 0;

  constructor(private readonly tmpRoot: string) {}

  /** A new lease with its own temp dir, tmp/lease-<n>, which the sweep does not clear while open. */
  async take(): Promise<Lease> {
    const name = `lease-${process.pid}-${this.seq++}`;
    const dir = join(this.tmpRoot, name);
    await mkdir(dir);
    this.open.add(name);
    return new Lease(this, name, dir);
  }

  isPinned(d: Digest): boolean {
    return (this.pins.get(d) ?? 0) > 0;
  }

  /** Whether the entry `name` of tmp/ belongs to an open lease. */
  isLeased(name: string): boolean {
    return this.open.has(name);
  }

  /** @internal for Lease */
  count(d: Digest, delta: number): void {
    const n = (this.pins.get(d) ?? 0) + delta;
    if (n > 0) this.pins.set(d, n);
    else this.pins.delete(d);
  }

  /** @internal for Lease */
  close(name: string): void {
    this.open.delete(name);
  }
}
