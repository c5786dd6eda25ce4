/**
 * IPv4 address arithmetic for the allocator: subnets as (base, prefix) over 32-bit numbers, so that
 * overlap checks and free-address searches need no string work on the hot path.
 */

export interface Subnet {
  base: number;
  prefix: number;
}

export class IpamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IpamError';
  }
}

export function parseIp(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) throw new IpamError(`"${s}" is not an IPv4 address`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new IpamError(`"${s}" is not an IPv4 address`);
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseSubnet(cidr: string): Subnet {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new IpamError(`"${cidr}" is not a subnet in CIDR notation (e.g. 10.0.9.0/24)`);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 29) throw new IpamError(`subnet ${cidr}: the prefix length must be between 8 and 29`);
  const ip = parseIp(m[1]!);
  const base = (ip & maskOf(prefix)) >>> 0;
  if (base !== ip) throw new IpamError(`subnet ${cidr} has host bits set (did you mean ${formatIp(base)}/${prefix}?)`);
  return { base, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIp(s.base)}/${s.prefix}`;
}

function size(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

export function contains(s: Subnet, ip: number): boolean {
  return ((ip & maskOf(s.prefix)) >>> 0) === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return contains(a, b.base) || contains(b, a.base);
}

/** A usable host address: neither the network's own address nor its broadcast. */
export function isHostAddress(s: Subnet, ip: number): boolean {
  return contains(s, ip) && ip !== s.base && ip !== s.base + size(s) - 1;
}

/** The first subnet of `prefix` bits inside `pool` that overlaps none of `used`. */
export function nextFreeSubnet(pool: Subnet, prefix: number, used: Subnet[]): Subnet | undefined {
  const step = 2 ** (32 - prefix);
  const end = pool.base + size(pool);
  for (let base = pool.base; base + step <= end; base += step) {
    const candidate = { base, prefix };
    const clash = used.find((u) => overlaps(u, candidate));
    // Skip past the clashing subnet at once rather than step by step through it.
    if (clash) {
      const clashEnd = clash.base + size(clash);
      if (clashEnd > base + step) base = clashEnd - step;
      continue;
    }
    return candidate;
  }
  return undefined;
}

/**
 * The lowest free host address of `subnet`, searching from `hint` (the last one given, so that
 * a freed address is not handed out again at once: a stale neighbour entry somewhere could still
 * point at it).
 */
export function nextFreeAddress(subnet: Subnet, used: ReadonlySet<number>, hint = 0): number | undefined {
  const first = subnet.base + 1;
  const last = subnet.base + size(subnet) - 2;
  const start = hint >= first && hint <= last ? hint : first;
  for (let ip = start; ip <= last; ip++) if (!used.has(ip)) return ip;
  for (let ip = first; ip < start; ip++) if (!used.has(ip)) return ip;
  return undefined;
}
