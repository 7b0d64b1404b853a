import { usageError } from '../errors.js';
import { isLoopbackHost } from '../config/proxy-url.js';

export const DEFAULT_LOOKUP_BASE = 'https://sandbox.tensorlake.ai';
/** Where a local Tensorlake stack's sandbox proxy listens (upstream's default). */
export const LOCAL_PROXY_URL = 'http://localhost:9443';

function hostOf(url: string): string | undefined {
  try {
    return new URL(url.trim()).hostname;
  } catch {
    return undefined;
  }
}

/** An API URL on localhost or 127.0.0.1 is a local development stack: it has no lookup. */
export function isLocalApiUrl(apiUrl: string): boolean {
  const host = hostOf(apiUrl);
  return host === 'localhost' || host === '127.0.0.1';
}

/**
 * The lifecycle API base the sandbox is looked up at, derived from the API URL as Tensorlake's tools
 * do: `api.X` becomes `sandbox.X` (the scheme kept, the port dropped), anything else the public default.
 */
export function deriveLookupBase(apiUrl: string): string {
  try {
    const url = new URL(apiUrl.trim());
    if (url.hostname.startsWith('api.') && (url.protocol === 'https:' || url.protocol === 'http:')) {
      // Without the port, as upstream does: TENSORLAKE_SANDBOX_API_URL names a base with one.
      return `${url.protocol}//sandbox.${url.hostname.slice(4)}`;
    }
  } catch {
    // Not a URL: the default below.
  }
  return DEFAULT_LOOKUP_BASE;
}

/**
 * Checks a lookup base before the token is sent to it: http(s) only, no credentials in it, and
 * clear text only to this machine unless allowed. Returns it without trailing slashes.
 */
export function checkLookupBase(base: string, setting: string, allowInsecure = false): string {
  let url: URL;
  try {
    url = new URL(base.trim());
  } catch {
    throw usageError(`Invalid ${setting}: use a base URL such as https://sandbox.tensorlake.ai`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw usageError(`Invalid ${setting}: use https:// (or http:// on this machine)`);
  if (url.username !== '' || url.password !== '') throw usageError(`Invalid ${setting}: it must not contain a user name or password`);
  if (url.search !== '' || url.hash !== '') throw usageError(`Invalid ${setting}: give only the scheme, host, port and path`);
  if (url.protocol === 'http:' && !allowInsecure && !isLoopbackHost(url.hostname)) {
    throw usageError(`Refusing to send credentials in clear text to ${url.host} (${setting}): use https://, or pass --allow-insecure if you really mean it`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}
