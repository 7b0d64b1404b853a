import { isIP } from 'node:net';
import { ErrorCodes, TunnelError } from '../index.js';

const usageError = (message: string): TunnelError => new TunnelError(ErrorCodes.USAGE, message);

/** The HTTP proxy chosen for one tunnel origin, and where the choice came from (for messages). */
export interface ProxyChoice {
  url: URL;
  /** "--proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY" or "http_proxy". */
  source: string;
}

function envValue(env: NodeJS.ProcessEnv, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

/**
 * Parses a proxy URL from --proxy or the environment. A bare "host:port" means http://host:port,
 * as curl reads it. Error messages name the source but never quote the value: it may hold a password.
 */
export function parseHttpProxyUrl(text: string, source: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw usageError(`Invalid proxy URL in ${source}: use http://host:port (or http://user:password@host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`Unsupported proxy scheme "${url.protocol}" in ${source}: only HTTP CONNECT proxies (http:// or https://) are supported`);
  }
  if (url.hostname === '') throw usageError(`Invalid proxy URL in ${source}: it has no host`);
  return url;
}

function bareHost(hostname: string): string {
  return (hostname.startsWith('[') ? hostname.slice(1, -1) : hostname).toLowerCase().replace(/\.$/, '');
}

/** "host", "host:port", "[::1]:port" or a bare IPv6 address (whose colons are not a port). */
function splitEntry(entry: string): { host: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(entry);
  if (bracketed) return { host: bracketed[1] as string, port: bracketed[2] === undefined ? undefined : Number(bracketed[2]) };
  if (isIP(entry) === 6) return { host: entry };
  const withPort = /^([^:]*):([0-9]+)$/.exec(entry);
  return withPort ? { host: withPort[1] as string, port: Number(withPort[2]) } : { host: entry };
}

/**
 * Whether NO_PROXY exempts host:port. Entries are separated by commas or spaces: `*` (everything),
 * a host or IP (that host and its subdomains), `.example.com` or `*.example.com` (the same), each
 * optionally with `:port`; IPv6 may be bracketed. Loopback is not exempt unless listed, so an
 * explicit HTTPS_PROXY is used even for 127.0.0.1.
 */
export function bypassesProxy(noProxy: string, hostname: string, port: number): boolean {
  const host = bareHost(hostname);
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const rule = splitEntry(entry);
    if (rule.port !== undefined && rule.port !== port) continue;
    const name = bareHost(rule.host).replace(/^\*?\./, '');
    if (name !== '' && (host === name || host.endsWith(`.${name}`))) return true;
  }
  return false;
}

/**
 * Picks the HTTP proxy for a tunnel origin: --proxy always; else HTTPS_PROXY (wss) or HTTP_PROXY
 * (ws), lower-case names first as curl does, unless NO_PROXY exempts the host.
 */
export function chooseHttpProxy(target: { secure: boolean; hostname: string; port: number }, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ProxyChoice | undefined {
  if (flag !== undefined && flag.trim() !== '') return { url: parseHttpProxyUrl(flag.trim(), '--proxy'), source: '--proxy' };
  const found = envValue(env, target.secure ? ['https_proxy', 'HTTPS_PROXY'] : ['http_proxy', 'HTTP_PROXY']);
  if (!found) return undefined;
  const noProxy = envValue(env, ['no_proxy', 'NO_PROXY']);
  if (noProxy && bypassesProxy(noProxy.value, target.hostname, target.port)) return undefined;
  return { url: parseHttpProxyUrl(found.value, found.name), source: found.name };
}
