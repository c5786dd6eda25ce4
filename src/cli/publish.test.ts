import { describe, expect, it } from 'vitest';
import { parsePublish } from './publish.js';

describe('--publish', () => {
  it('reads the short and the long form', () => {
    expect(parsePublish('8080:80')).toEqual({ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' });
    expect(parsePublish('53:53/udp').protocol).toBe('udp');
    expect(parsePublish('80').publishedPort).toBe(0);
    expect(parsePublish('published=8080,target=80,mode=host')).toEqual({ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'host' });
  });
  it('names what is wrong', () => {
    expect(() => parsePublish('8080:0')).toThrow(/invalid port "0"/);
    expect(() => parsePublish('published=1,target=2,mode=bridge')).toThrow(/mode must be ingress or host/);
    expect(() => parsePublish('a:b')).toThrow(/expected PUBLISHED:TARGET/);
  });
});
