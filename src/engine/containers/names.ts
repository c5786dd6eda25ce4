/** Docker-style random container names ("brave_turing") for containers created without --name. */
import { randomInt } from 'node:crypto';

const ADJECTIVES = [
  'agile', 'bold', 'brave', 'calm', 'clever', 'eager', 'fair', 'gentle', 'happy', 'jolly', 'keen', 'kind',
  'lucid', 'merry', 'nimble', 'proud', 'quick', 'quiet', 'sharp', 'steady', 'swift', 'tidy', 'vivid', 'witty',
];
const SCIENTISTS = [
  'babbage', 'curie', 'dijkstra', 'euler', 'fermat', 'gauss', 'hopper', 'hamilton', 'kepler', 'knuth',
  'lamport', 'lovelace', 'liskov', 'noether', 'pascal', 'ritchie', 'shannon', 'thompson', 'turing', 'wing',
];

export function randomContainerName(taken: (name: string) => boolean): string {
  for (let attempt = 0; ; attempt++) {
    const base = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SCIENTISTS[randomInt(SCIENTISTS.length)]}`;
    const name = attempt < 10 ? base : `${base}${attempt}`;
    if (!taken(name)) return name;
  }
}
