export * from './types.js';
export { Raft, appliableBeforePersist, sendableBeforePersist, type RaftConfig, type RaftRestore, type RaftStatus, type ProposeResult } from './raft.js';
export { encodeConfChange, decodeConfChange, applyConfChange, bootstrapEntries } from './confchange.js';
export { seededRandom } from './rand.js';
export { validateMessage } from './validate.js';
