import type { Entry, EntryType, Message, MsgType, SnapChunk } from '../core/types.js';

/** Shapes as proto-loader decodes them (defaults on, uint64 as Number, bytes as Buffer). */
export interface WireEntry { term: number; index: number; type: number; data: Uint8Array }
export interface WireSnapChunk {
  meta: { index: number; term: number; conf: { voters: number[]; learners: number[] } | null } | null;
  offset: number; total: number; data: Uint8Array;
}
export interface WireMessage {
  type: number; from: number; to: number; term: number; logTerm: number; index: number; commit: number;
  entries: WireEntry[]; reject: boolean; rejectHint: number; hintTerm: number; context: number;
  transfer: boolean; readCtx: string; snap: WireSnapChunk | null; offset: number;
}

/**
 * Wire -> core. Structure is copied field by field so nothing unexpected reaches the core; the core
 * validates meaning (and drops with a reason) on its own.
 */
export function fromWire(w: WireMessage): Message {
  const entries: Entry[] = new Array(w.entries?.length ?? 0);
  for (let i = 0; i < entries.length; i++) {
    const e = w.entries[i]!;
    entries[i] = { term: e.term, index: e.index, type: e.type as EntryType, data: e.data };
  }
  let snap: SnapChunk | null = null;
  if (w.snap && w.snap.meta) {
    const c = w.snap.meta.conf ?? { voters: [], learners: [] };
    snap = {
      meta: { index: w.snap.meta.index, term: w.snap.meta.term, conf: { voters: c.voters, learners: c.learners } },
      offset: w.snap.offset, total: w.snap.total, data: w.snap.data,
    };
  }
  return {
    type: w.type as MsgType, from: w.from, to: w.to, term: w.term, logTerm: w.logTerm, index: w.index,
    commit: w.commit, entries, reject: w.reject, rejectHint: w.rejectHint, hintTerm: w.hintTerm,
    context: w.context, transfer: w.transfer, readCtx: w.readCtx, snap, offset: w.offset,
  };
}

/** Rough encoded size, to keep batches under the message cap. */
export function approxSize(m: Message): number {
  let n = 64;
  for (let i = 0; i < m.entries.length; i++) n += m.entries[i]!.data.length + 24;
  if (m.snap) n += m.snap.data.length + 64;
  return n;
}
