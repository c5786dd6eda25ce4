/**
 * WWW-Authenticate challenges (RFC 7235) as registries send them on a 401: `Bearer realm="…",
 * service="…",scope="…"` for the token flow, `Basic realm="…"` for htpasswd-style auth. Parsed by hand
 * because the header is small and its grammar (quoted strings with escapes, commas inside quotes) is
 * easy to get subtly wrong with a regular expression split.
 */

export interface Challenge {
  /** Lowercased: "bearer", "basic" */
  scheme: string;
  /** Parameter names lowercased: realm, service, scope, error */
  params: Record<string, string>;
}

/** All challenges in a header value, in order; an unparsable tail is ignored. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skipSpace = (): void => { while (i < header.length && /[\s,]/.test(header[i] as string)) i++; };
  const token = (): string => {
    const start = i;
    while (i < header.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  while (i < header.length) {
    skipSpace();
    const scheme = token();
    if (scheme === '') break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      while (i < header.length && /\s/.test(header[i] as string)) i++;
      const mark = i;
      const name = token();
      while (i < header.length && /\s/.test(header[i] as string)) i++;
      if (name === '' || header[i] !== '=') { i = mark; break; } // the next scheme starts here
      i++;
      while (i < header.length && /\s/.test(header[i] as string)) i++;
      challenge.params[name.toLowerCase()] = header[i] === '"' ? quoted() : token();
      while (i < header.length && /\s/.test(header[i] as string)) i++;
      if (header[i] === ',') i++;
    }
  }
  return out;

  function quoted(): string {
    let value = '';
    i++; // opening quote
    while (i < header.length && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < header.length) i++;
      value += header[i];
      i++;
    }
    i++; // closing quote
    return value;
  }
}
