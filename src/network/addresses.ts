/** IPv4 arithmetic the driver needs: subnets, membership, and the MAC an overlay address implies. */

export interface Ipv4Subnet {
  /** The network address as an unsigned 32-bit number. */
  base: number;
  prefixLength: number;
}

export function ipToNumber(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
    value = value * 256 + Number(part);
  }
  return value;
}

export function parseSubnet(cidr: string): Ipv4Subnet {
  const [ip, len, ...rest] = cidr.split('/');
  const prefixLength = Number(len);
  if (ip === undefined || rest.length > 0 || !/^\d{1,2}$/.test(len ?? '') || prefixLength > 32) {
    throw new Error(`not an IPv4 CIDR: ${JSON.stringify(cidr)}`);
  }
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return { base: (ipToNumber(ip) & mask) >>> 0, prefixLength };
}

export function subnetContains(subnet: Ipv4Subnet, ip: string): boolean {
  const mask = subnet.prefixLength === 0 ? 0 : (0xffffffff << (32 - subnet.prefixLength)) >>> 0;
  return ((ipToNumber(ip) & mask) >>> 0) === subnet.base;
}

/** 02:42 followed by the address's four octets, as Docker's overlay derives it: peers need no MAC exchange. */
export function macForIp(ip: string): string {
  const n = ipToNumber(ip);
  const octets = [24, 16, 8, 0].map((shift) => ((n >>> shift) & 0xff).toString(16).padStart(2, '0'));
  return `02:42:${octets.join(':')}`;
}
