/** The worker's image store: see store.ts. */
export { ImageStore, type RemoveOptions } from './store.js';
export type { ImageRecord } from './metadata.js';
export type { ImageConfig } from './image-config.js';
export { ImageError } from './errors.js';
export { normalizeRef, parseReference } from './reference.js';
export type { PullResult } from './store.js';
export * from './registry/index.js';
