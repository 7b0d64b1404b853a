import { isIP } from 'node:net';
import { quoteInput, usageError } from '../errors.js';
import { hostLabel } from './sandbox-name.js';

export const DEFAULT_PROXY_DOMAIN = 'sandbox.tensorlake.ai';
export const TUNNEL_PATH = '/api/v1/tunnels/tcp';

/** Where the tunnel's upgrades go, derived once per tunnel. */
export interface ProxyTarget {
  /** ws:// or wss:// origin, without path (e.g. wss://sbx-1.sandbox.tensorlake.ai). */
  origin: string;
  /** Host name (no brackets, no port). */
  hostname: string;
  /** Whether the key travels inside TLS. */
  secure: boolean;
  /** True when the host is the sandbox's own default host (so a DNS failure means "no such sandbox"). */
  perSandboxHost: boolean;
}

const SCHEMES: Record<string, 'ws:' | 'wss:'> = { 'http:': 'ws:', 'ws:': 'ws:', 'https:': 'wss:', 'wss:': 'wss:' };

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  // Only the exact name: resolvers may send *.localhost to real DNS, and the key with it.
  if (host.toLowerCase() === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Maps a proxy base (https://..., http://..., wss://..., ws://...) to the tunnel origin, refusing
 * anything that could send the key somewhere unexpected: credentials in the URL, paths and queries
 * that would be silently dropped, other schemes, and clear text to a non-loopback host.
 */
export function resolveProxyTarget(sandbox: string, proxyUrl: string | undefined, allowInsecure = false): ProxyTarget {
  if (proxyUrl === undefined) {
    const hostname = `${hostLabel(sandbox)}.${DEFAULT_PROXY_DOMAIN}`;
    return { origin: `wss://${hostname}`, hostname, secure: true, perSandboxHost: true };
  }
  if (proxyUrl === '') {
    throw usageError('Invalid proxy URL: it is empty; leave it out for the default, or give a base such as https://proxy.example.com');
  }
  // The URL parser drops tabs and newlines and maps look-alike letters to ASCII or punycode: what it
  // would connect to is not what was typed, so only printable ASCII passes.
  if (!/^[\x21-\x7e]+$/.test(proxyUrl)) {
    throw usageError(`Invalid proxy URL ${quoteInput(proxyUrl)}: it contains spaces, control or non-ASCII characters`);
  }
  let url: URL;
  try {
    url = new URL(proxyUrl);
  } catch {
    throw usageError(`Invalid proxy URL ${quoteInput(proxyUrl)}: use a base such as https://proxy.example.com or http://localhost:9443`);
  }
  const scheme = SCHEMES[url.protocol];
  if (scheme === undefined) {
    throw usageError(`Invalid proxy URL scheme "${url.protocol}": use https:// (or http:// for a proxy on this machine), e.g. https://proxy.example.com`);
  }
  if (url.username !== '' || url.password !== '') {
    throw usageError('Invalid proxy URL: it must not contain a user name or password; the key is sent with --api-key or TENSORLAKE_API_KEY');
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || proxyUrl.includes('?') || proxyUrl.includes('#')) {
    throw usageError(`Invalid proxy URL: give only the scheme, host and port (e.g. ${url.protocol}//${url.host}); the path ${TUNNEL_PATH} is added for you`);
  }
  if (url.hostname === '') {
    throw usageError('Invalid proxy URL: it has no host, e.g. https://proxy.example.com');
  }
  if (url.port === '0') {
    throw usageError(`Invalid proxy URL: port 0 cannot be connected to; give the proxy's real port, e.g. ${url.protocol}//${url.hostname}:9443`);
  }
  const secure = scheme === 'wss:';
  if (!secure && !allowInsecure && !isLoopbackHost(url.hostname)) {
    throw usageError(`Refusing to send credentials in clear text to ${url.host}: use https:// or wss://, or pass --allow-insecure if you really mean it`);
  }
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { origin: `${scheme}//${url.host}`, hostname, secure, perSandboxHost: false };
}

/** The full upgrade URL for one remote port. */
export function tunnelUrl(target: ProxyTarget, remotePort: number): string {
  return `${target.origin}${TUNNEL_PATH}?port=${remotePort}`;
}
