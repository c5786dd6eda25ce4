/** Object ids: what every object of the swarm (node, service, task, network, the swarm itself) is named by. */
import { randomBytes } from 'node:crypto';

export function newObjectId(): string {
  // 25 base-36 characters, as SwarmKit's ids look.
  return BigInt(`0x${randomBytes(16).toString('hex')}`).toString(36).padStart(25, '0').slice(-25);
}
