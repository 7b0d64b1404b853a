import { ErrorCodes, TunnelError, isLoopbackHost, lookupBaseFor, resolveProxyTarget, type BoundAddress, type TunnelOptions } from '../index.js';

// Addresses whose listener accepts a connection made to 127.0.0.1 (a dual-stack "::" does).
const REACHES_IPV4_LOOPBACK = new Set(['127.0.0.1', '0.0.0.0', '::']);

/**
 * A proxy on this machine relays to 127.0.0.1:<remote> here (tl-tunnel-server does exactly that).
 * When tl-tunnel itself holds 127.0.0.1:<remote>, the proxy's connection lands on our own listener,
 * which opens another tunnel, which connects to our listener again, until the connection limit.
 * Only a listener that really bound 127.0.0.1 counts: when a service already holds that port, the
 * proxy reaches the service and nothing loops.
 */
export function selfLoopError(addresses: readonly BoundAddress[], options: Pick<TunnelOptions, 'sandbox' | 'proxyUrl' | 'fallbackProxyUrl' | 'allowInsecure' | 'apiUrl' | 'sandboxApiUrl'>): TunnelError | undefined {
  // The proxy known before any lookup: the explicit one, or the setting when nothing is looked up.
  const proxyUrl = options.proxyUrl ?? (lookupBaseFor(options) === undefined ? options.fallbackProxyUrl : undefined);
  if (proxyUrl === undefined) return undefined;
  const target = resolveProxyTarget(options.sandbox, proxyUrl, options.allowInsecure);
  if (!isLoopbackHost(target.hostname)) return undefined;
  const looping = addresses.find((a) => a.port === a.remotePort && REACHES_IPV4_LOOPBACK.has(a.address));
  if (looping === undefined) return undefined;
  const p = looping.port;
  const other = p + 10_000 <= 65_535 ? `${p + 10_000}:${p}` : `${p - 10_000}:${p}`;
  return new TunnelError(
    ErrorCodes.USAGE,
    `Port ${p} would loop: the proxy ${proxyUrl} is on this machine, and a proxy here that relays to 127.0.0.1:${p} (as tl-tunnel-server does) reaches tl-tunnel's own listener; forward another local port (e.g. ${other}, or :${p} for a free one)`,
  );
}
