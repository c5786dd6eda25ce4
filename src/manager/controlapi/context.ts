/**
 * What every resource of the control API shares: the store it reads (after a linearizable barrier),
 * the log it writes through (compare-and-set proposals), and how a user's reference names an object.
 */
import { ControlError } from '../../api/errors.js';
import { matchRef, type NetworkObject, type NodeObject, type RegistryAuth, type ServiceObject } from '../../api/objects.js';
import { ValidationError } from '../../api/validation.js';
import type { ClusterLog } from '../state/cluster-log.js';
import type { Action, ClusterStore, StoreError } from '../state/store.js';

export type ConstraintCheck = (expr: string) => string | undefined; // an error message, or undefined when valid

/** The serving manager's view of registries (its daemon's image distribution), for `service create|update`. */
export interface ImageResolver {
  /** `name:tag` → `name:tag@sha256:…` as the registry has it now; undefined when the image is this node's own (imported, never in a registry). */
  pin(image: string, auth?: RegistryAuth): Promise<string | undefined>;
  /** The credentials this manager's daemon keeps for the image's registry (`tsswarm login`). */
  authFor(image: string): Promise<RegistryAuth | undefined>;
}

function fromStoreError(err: StoreError): ControlError {
  return new ControlError(err.message, err.code === 'not-found' ? 'not-found' : err.code === 'exists' ? 'exists' : err.code === 'conflict' ? 'conflict' : 'invalid');
}

export class ControlContext {
  constructor(
    readonly store: ClusterStore,
    readonly log: ClusterLog,
    readonly checkConstraint: ConstraintCheck = () => undefined,
    readonly now: () => string = () => new Date().toISOString(),
    readonly images?: ImageResolver,
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
