import { isLoopbackHost } from '../config/proxy-url.js';

/**
 * The masking key of every frame we send: all zeros where no intermediary can read the frames.
 * With a random key ws allocates a new buffer per frame and writes the masked payload into it;
 * with a zero key masking is a no-op and ws sends our buffer as it is (over wss that cut the
 * client's upload CPU per GiB by about a sixth; see docs/benchmarks.md).
 *
 * Masking (RFC 6455 section 10.3) keeps script in a browser from choosing the bytes a
 * transparent proxy sees on the wire, and so from poisoning its cache. Inside TLS no intermediary
 * sees them, and on a loopback connection made without an HTTP proxy there is none. Over any
 * other clear-text path the bytes a user's browser sends through the -D HTTP proxy are exactly
 * that kind of script-chosen input, so frames keep ws's random keys there.
 */
export function frameMask(url: string, viaAgent: boolean): ((mask: Buffer) => void) | undefined {
  const { protocol, hostname } = new URL(url);
  const unseen = protocol === 'wss:' || (!viaAgent && isLoopbackHost(hostname));
  return unseen ? zeroMask : undefined;
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}
