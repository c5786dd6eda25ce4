import type { Message } from '../core/types.js';

/** Rough encoded size, to keep batches under the message cap. */
export function approxSize(m: Message): number {
  let n = 64;
  for (let i = 0; i < m.entries.length; i++) n += m.entries[i]!.data.length + 24;
  if (m.snap) n += m.snap.data.length + 64;
  return n;
}
