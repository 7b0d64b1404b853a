// HTTP proxy requests: CONNECT host:port, and absolute-form requests (GET http://host:port/path)
// rewritten to origin-form. A pure parser over the bytes received so far.
import type { Parse, Target } from './socks.js';
import type { BodyFraming } from './http-exchange.js';

export const MAX_HEAD_BYTES = 32 * 1024;

export type HttpProxyRequest = Target &
  ({ mode: 'connect' } | { mode: 'forward'; /** The rewritten request head, to send first. */ head: Buffer; /** How the request's body ends. */ body: BodyFraming; upgrade: boolean });

const STATUS_TEXT: Record<number, string> = {
  200: 'Connection established',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** A complete answer that closes the connection; the body is one line of text. */
export function httpReply(status: number, message: string): Buffer {
  const body = `${message}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\nproxy-agent: tl-tunnel\r\n\r\n${body}`,
  );
}

export const CONNECT_ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\nproxy-agent: tl-tunnel\r\n\r\n');

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: visible ASCII, spaces, tabs and obs-text; no CR, LF or NUL (a smuggled header).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// Request targets: visible ASCII only.
const TARGET = /^[\x21-\x7e]+$/;
/** Hop-by-hop headers (RFC 9110 section 7.6.1) and the proxy's own; never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade']);

function fail(status: number, message: string): Parse<HttpProxyRequest> {
  return { kind: 'error', reply: httpReply(status, message), message };
}

/** "host:port" / "[v6]:port" / "host" (with a default port); undefined when malformed. */
export function parseAuthority(authority: string, defaultPort: number | undefined): Target | undefined {
  if (authority.includes('@')) return undefined;
  let host: string;
  let rest: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return undefined;
    host = authority.slice(1, close);
    rest = authority.slice(close + 1);
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    rest = colon < 0 ? '' : authority.slice(colon);
    if (host.includes(':')) return undefined;
  }
  if (host === '') return undefined;
  if (rest === '') return defaultPort === undefined ? undefined : { host, port: defaultPort };
  if (!/^:[0-9]{1,5}$/.test(rest)) return undefined;
  const port = Number(rest.slice(1));
  return port >= 1 && port <= 65535 ? { host, port } : undefined;
}

/**
 * One proxy request head. CONNECT opens a raw tunnel. An absolute-form request is forwarded as
 * origin-form with Host set from the URL and `Connection: close`: one request, one tunnel, its body
 * found by its framing (see http-exchange.ts).
 */
export function parseHttpProxyRequest(buf: Buffer): Parse<HttpProxyRequest> {
  let end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (buf.length > MAX_HEAD_BYTES) return fail(431, 'Request head too large');
    return { kind: 'more' };
  }
  if (end + 4 > MAX_HEAD_BYTES) return fail(431, 'Request head too large');
  end += 4;
  const lines = buf.subarray(0, end - 4).toString('latin1').split('\r\n');
  const requestLine = lines.shift() ?? '';
  const parts = requestLine.split(' ');
  if (parts.length !== 3) return fail(400, 'Malformed request line');
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method) || !TARGET.test(target)) return fail(400, 'Malformed request line');
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return fail(505, 'Only HTTP/1.0 and HTTP/1.1 are proxied');
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).trim();
    // Also refuses obsolete line folding (a line starting with a space): a smuggling vector.
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return fail(400, 'Malformed header line');
    headers.push([name, value]);
  }
  if (method === 'CONNECT') {
    const to = parseAuthority(target, undefined);
    if (!to) return fail(400, `CONNECT needs host:port, got ${JSON.stringify(target.slice(0, 100))}`);
    return { kind: 'ok', consumed: end, mode: 'connect', ...to };
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(target)?.[1]?.toLowerCase();
  if (scheme === undefined) return fail(400, 'This is a proxy (tl-tunnel): send absolute-form requests such as GET http://my-sandbox:8080/ HTTP/1.1, or CONNECT');
  if (scheme !== 'http') return fail(400, `Only http:// URLs are forwarded; for ${scheme}:// use CONNECT (e.g. HTTPS_PROXY)`);
  const afterScheme = target.slice(scheme.length + 3);
  const pathAt = afterScheme.search(/[/?#]/);
  const authority = pathAt < 0 ? afterScheme : afterScheme.slice(0, pathAt);
  let path = pathAt < 0 ? '/' : afterScheme.slice(pathAt);
  path = path.replace(/#.*$/, '');
  if (path.startsWith('?')) path = `/${path}`;
  const to = parseAuthority(authority, 80);
  if (!to) return fail(400, `Malformed URL authority ${JSON.stringify(authority.slice(0, 100))}`);
  return rewrite(buf, end, method, path, version, authority, headers, to);
}

function rewrite(buf: Buffer, end: number, method: string, path: string, version: string, authority: string, headers: [string, string][], to: Target): Parse<HttpProxyRequest> {
  const lower = (n: string): string => n.toLowerCase();
  const connectionTokens = headers.filter(([n]) => lower(n) === 'connection' || lower(n) === 'proxy-connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase()));
  const upgrade = connectionTokens.includes('upgrade') ? headers.find(([n]) => lower(n) === 'upgrade')?.[1] : undefined;
  const lengths = new Set(headers.filter(([n]) => lower(n) === 'content-length').map(([, v]) => v));
  const codings = headers.filter(([n]) => lower(n) === 'transfer-encoding').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase()));
  const chunked = codings.length > 0;
  // Ambiguous framing is how requests are smuggled; refuse it rather than guess.
  if ((chunked && lengths.size > 0) || lengths.size > 1) return fail(400, 'Conflicting Content-Length / Transfer-Encoding');
  if (chunked && (codings.length !== 1 || codings[0] !== 'chunked' || version === 'HTTP/1.0')) return fail(400, 'Only Transfer-Encoding: chunked (HTTP/1.1) is forwarded');
  const [length] = [...lengths];
  if (length !== undefined && !/^[0-9]{1,15}$/.test(length)) return fail(400, 'Malformed Content-Length');
  const kept = headers.filter(([n]) => {
    const name = lower(n);
    return name !== 'host' && name !== 'transfer-encoding' && !HOP_BY_HOP.has(name) && !connectionTokens.includes(name);
  });
  if (chunked) kept.push(['Transfer-Encoding', 'chunked']);
  const lines = [`${method} ${path} ${version}`, `Host: ${authority}`, ...kept.map(([n, v]) => `${n}: ${v}`)];
  // Upgrades (WebSocket) keep their connection; everything else closes after one answer.
  if (upgrade !== undefined) lines.push(`Upgrade: ${upgrade}`, 'Connection: Upgrade');
  else lines.push('Connection: close');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  // The body is found by its framing (http-exchange.ts): bytes past it never enter this tunnel.
  const body: BodyFraming = chunked ? { kind: 'chunked' } : length !== undefined ? { kind: 'length', length: Number(length) } : { kind: 'none' };
  return { kind: 'ok', consumed: end, mode: 'forward', host: to.host, port: to.port, head, body, upgrade: upgrade !== undefined };
}
