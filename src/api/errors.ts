/**
 * The errors the swarm's API answers with, by kind: each kind maps to one gRPC status (and, for the
 * Docker Engine API, one HTTP status), whichever part of the manager raised it.
 */
export class ControlError extends Error {
  constructor(message: string, readonly code: 'not-found' | 'exists' | 'conflict' | 'invalid' | 'unavailable') {
    super(message);
    this.name = 'ControlError';
  }
}
