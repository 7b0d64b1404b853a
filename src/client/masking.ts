import { isLoopbackHost } from '../config/proxy-url.js';

/**
 * RFC 6455 §10.3 has clients mask their frames so that a hostile script in a browser cannot make
 * its bytes look like HTTP to a caching intermediary on the path. Masking costs a pass over every
 * byte sent (and a copy); it protects only where an intermediary can read the stream. Over TLS none
 * can, and on this machine's loopback there is none, so there the mask is all zeros, which ws takes
 * as "no masking" (no pass, no copy). Plain ws:// to another host (--allow-insecure), or through an
 * HTTP CONNECT proxy that sees the clear text, keeps ws's random masks: a local program's bytes could
 * otherwise be aimed at a transparent cache on the way.
 */
export function maskingNeeded(url: string, viaHttpProxy: boolean): boolean {
  const target = new URL(url);
  if (target.protocol === 'wss:' || target.protocol === 'https:') return false;
  return viaHttpProxy || !isLoopbackHost(target.hostname.replace(/^\[(.*)\]$/, '$1'));
}

/** ws's generateMask: the all-zero key, which ws sends without masking the payload. */
export function zeroMask(mask: Buffer): void {
  mask.fill(0);
}
