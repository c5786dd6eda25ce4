/**
 * What every resource of the control API shares: the store it reads (after a linearizable barrier),
 * the log it writes through (compare-and-set proposals), and how a user's reference names an object.
 */
import { ControlError } from '../../api/errors.js';
import { matchRef, type NetworkObject, type NodeObject, type ServiceObject } from '../../api/objects.js';
import { ValidationError } from '../../api/validation.js';
import type { ClusterLog } from '../state/cluster-log.js';
import type { Action, ClusterStore, StoreError } from '../state/store.js';

export type ConstraintCheck = (expr: string) => string | undefined; // an error message, or undefined when valid

function fromStoreError(err: StoreError): ControlError {
  return new ControlError(err.message, err.code === 'not-found' ? 'not-found' : err.code === 'exists' ? 'exists' : err.code === 'conflict' ? 'conflict' : 'invalid');
}

export class ControlContext {
  constructor(
    readonly store: ClusterStore,
    readonly log: ClusterLog,
    readonly checkConstraint: ConstraintCheck = () => undefined,
    readonly now: () => string = () => new Date().toISOString(),
  ) {}

  async write(actions: Action[]) {
    const result = await this.log.propose({ actions, time: this.now() });
    if (!result.ok) throw fromStoreError(result.error);
    return result.objects;
  }

  /** By exact id, exact name, or unique id prefix: what docker accepts. */
  resolve<K extends 'node' | 'service' | 'network'>(kind: K, ref: string, nameOf: (o: any) => string): K extends 'node' ? NodeObject : K extends 'service' ? ServiceObject : NetworkObject {
    if (!ref) throw new ValidationError(`a ${kind} id or name is required`);
    const { match, ambiguous } = matchRef(this.store.list(kind) as (NodeObject | ServiceObject | NetworkObject)[], ref, nameOf);
    if (match) return match as never;
    if (ambiguous) throw new ControlError(`${kind} ${ref} is ambiguous (${ambiguous} matches)`, 'invalid');
    throw new ControlError(`${kind} ${ref} not found`, 'not-found');
  }
}
