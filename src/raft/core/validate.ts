import { EntryType, MSG_TYPE_MAX, MsgType, type Entry, type Message, type NodeId } from './types.js';

const isIdx = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;

/**
 * Structural checks of a message before the state machine looks at it. Returns the reason the message
 * is malformed, or null. Anything from the network passes here first, so nothing downstream throws.
 */
export function validateMessage(m: Message, self: NodeId): string | null {
  if (m === null || typeof m !== 'object') return 'malformed: not an object';
  if (!Number.isInteger(m.type) || m.type < 0 || m.type > MSG_TYPE_MAX) return 'malformed: unknown type';
  if (!isId(m.from)) return 'malformed: from';
  if (m.to !== self) return 'malformed: addressed to another node';
  if (!isIdx(m.term) || !isIdx(m.index) || !isIdx(m.logTerm) || !isIdx(m.commit)) return 'malformed: negative or non-integer field';
  if (!isIdx(m.rejectHint) || !isIdx(m.hintTerm) || !isIdx(m.context) || !isIdx(m.offset)) return 'malformed: negative or non-integer field';
  if (typeof m.reject !== 'boolean' || typeof m.transfer !== 'boolean' || typeof m.readCtx !== 'string') return 'malformed: field type';
  if (!Array.isArray(m.entries)) return 'malformed: entries';
  const local = m.type === MsgType.Hup || m.type === MsgType.Beat;
  if (local && m.from !== self) return 'malformed: local message from a peer';
  if (!local && m.from === self && m.type !== MsgType.Prop) return 'malformed: message from self';
  if (m.entries.length > 0 && m.type !== MsgType.App && m.type !== MsgType.Prop) return 'malformed: entries on a message that carries none';
  if (m.type === MsgType.Prop) {
    if (m.entries.length === 0) return 'malformed: empty proposal';
    for (const e of m.entries) if (!isEntryShape(e)) return 'malformed: proposal entry';
  }
  if (m.type === MsgType.App) {
    if (m.term === 0) return 'malformed: append without term';
    let prevTerm = m.logTerm;
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      if (!isEntryShape(e) || e.index !== m.index + 1 + i) return 'malformed: append entries not consecutive';
      if (e.term < prevTerm || e.term > m.term) return 'malformed: append entry term out of order';
      prevTerm = e.term;
    }
    if (m.logTerm > m.term) return 'malformed: previous term beyond message term';
  }
  if (m.type === MsgType.Snap) {
    const c = m.snap;
    if (!c || typeof c !== 'object' || !c.meta || !(c.data instanceof Uint8Array)) return 'malformed: snapshot chunk';
    if (!isIdx(c.meta.index) || !isIdx(c.meta.term) || !isIdx(c.offset) || !isIdx(c.total)) return 'malformed: snapshot chunk fields';
    if (c.meta.index === 0 || c.meta.term > m.term) return 'malformed: snapshot meta';
    if (c.offset + c.data.length > c.total) return 'malformed: snapshot chunk beyond total';
    const conf = c.meta.conf;
    if (!conf || !Array.isArray(conf.voters) || !Array.isArray(conf.learners)) return 'malformed: snapshot conf';
    if (!conf.voters.every(isId) || !conf.learners.every(isId)) return 'malformed: snapshot conf ids';
  }
  if ((m.type === MsgType.Vote || m.type === MsgType.PreVote) && m.logTerm > m.term) return 'malformed: candidate log term beyond its term';
  return null;
}

function isEntryShape(e: Entry): boolean {
  return (
    e !== null && typeof e === 'object' && isIdx(e.term) && isIdx(e.index) &&
    (e.type === EntryType.Normal || e.type === EntryType.ConfChange) && e.data instanceof Uint8Array
  );
}
