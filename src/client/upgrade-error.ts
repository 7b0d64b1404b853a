import { ErrorCodes, TunnelError, redact } from '../errors.js';

export interface UpgradeContext {
  sandbox: string;
  remotePort: number;
  /** Host being contacted, for messages. */
  host: string;
  /** The host is <sandbox>.sandbox.tensorlake.ai, so "does not resolve" means "no such sandbox". */
  perSandboxHost: boolean;
  /** host:port of the HTTP CONNECT proxy the request went through, if any. */
  viaHttpProxy?: string;
  /** What to do about a refused token, naming where it came from. */
  authHint?: string;
}

interface ProxyBody {
  error?: string;
  code?: string;
}

/** Parses `{ "error": string, "code"?: string }`, tolerating a missing or non-JSON body. */
export function parseProxyBody(text: string): ProxyBody {
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object') return {};
    const { error, code } = value as Record<string, unknown>;
    return {
      // Redacted before being cut, so an echoed secret cannot survive as a fragment.
      error: typeof error === 'string' ? redact(error).slice(0, 300) : undefined,
      code: typeof code === 'string' ? redact(code).slice(0, 100) : undefined,
    };
  } catch {
    return {};
  }
}

// The library does not know which setting named the proxy; the CLI's -v line does.
const PROXY_HINT = 'check --proxy or HTTPS_PROXY / HTTP_PROXY';

/** Turns a non-101 answer to the upgrade into a TunnelError a person can act on. */
export function statusError(status: number, bodyText: string, ctx: UpgradeContext, fromHttpProxy = false): TunnelError {
  const body = parseProxyBody(bodyText);
  const said = body.error ? ` (proxy said: ${body.error}${body.code ? ` [${body.code}]` : ''})` : '';
  const details = { status, proxyError: body.error, proxyCode: body.code, host: ctx.host };
  if (fromHttpProxy) {
    const what =
      status === 407
        ? 'requires authentication (407): put user:password in the proxy URL'
        : status === 403
          ? `refused to connect to ${ctx.host} (403)`
          : `could not connect to ${ctx.host} (${status})`;
    const proxy = ctx.viaHttpProxy ? `The HTTP proxy ${ctx.viaHttpProxy}` : 'The HTTP proxy';
    return new TunnelError(ErrorCodes.HTTP_PROXY, `${proxy} ${what}${said}; ${PROXY_HINT}, or add ${ctx.host} to NO_PROXY`, details);
  }
  switch (status) {
    case 400:
      return new TunnelError(ErrorCodes.BAD_PORT, `The sandbox proxy rejected port ${ctx.remotePort}${said}`, details);
    case 401:
    case 403:
      return new TunnelError(
        ErrorCodes.AUTH,
        `The sandbox proxy rejected the credentials (${status})${said}: ${ctx.authHint ?? 'set a valid key with TENSORLAKE_API_KEY or --api-key'}`,
        details,
      );
    case 404:
      return new TunnelError(ErrorCodes.SANDBOX_NOT_FOUND, `No sandbox "${ctx.sandbox}" was found (404)${said}: check the sandbox id or name`, details);
    case 502:
      return new TunnelError(ErrorCodes.PORT_CLOSED, `Nothing is listening on port ${ctx.remotePort} inside sandbox ${ctx.sandbox}${said}`, details);
    default:
      return new TunnelError(ErrorCodes.PROXY_STATUS, `The sandbox proxy at ${ctx.host} answered ${status} instead of opening the tunnel${said}`, {
        ...details,
        retryable: status === 429 || (status >= 500 && status <= 599),
      });
  }
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL)/;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'ENETDOWN', 'EHOSTDOWN']);

/** Turns a network or TLS error during the upgrade into a TunnelError. */
export function networkError(err: Error & { code?: string }, ctx: UpgradeContext): TunnelError {
  const code = err.code ?? '';
  const detail = err.message;
  if (ctx.viaHttpProxy && (NETWORK_CODES.has(code) || code === 'ENOTFOUND')) {
    // Through a CONNECT proxy the target is resolved and dialled by the proxy, so these come from the proxy hop.
    return new TunnelError(ErrorCodes.HTTP_PROXY, `Cannot reach the HTTP proxy ${ctx.viaHttpProxy} (${code}): ${PROXY_HINT}`, { host: ctx.host, detail, retryable: code !== 'ENOTFOUND' });
  }
  if (code === 'ENOTFOUND') {
    return ctx.perSandboxHost
      ? new TunnelError(ErrorCodes.SANDBOX_NOT_FOUND, `No sandbox "${ctx.sandbox}" was found: ${ctx.host} does not resolve`, { host: ctx.host, detail })
      : new TunnelError(ErrorCodes.UNREACHABLE, `Cannot reach the sandbox proxy: ${ctx.host} does not resolve`, { host: ctx.host, detail });
  }
  // EPROTO is OpenSSL failing the handshake (e.g. https:// to a plain HTTP port): not worth retrying.
  if (TLS_CODES.test(code) || code === 'EPROTO') {
    const hint = code === 'EPROTO' ? 'does that port speak TLS? (http:// is for a plain proxy on this machine)' : 'for a private CA set NODE_EXTRA_CA_CERTS';
    return new TunnelError(ErrorCodes.TLS, `TLS with ${ctx.host} failed (${code}); ${hint}`, { host: ctx.host, detail });
  }
  if (NETWORK_CODES.has(code)) {
    return new TunnelError(ErrorCodes.UNREACHABLE, `Cannot reach the sandbox proxy at ${ctx.host} (${code})`, { host: ctx.host, detail, retryable: true });
  }
  if (/handshake|Sec-WebSocket|status line|Invalid|Unexpected server response|Parse Error/i.test(detail) || code.startsWith('HPE_')) {
    return new TunnelError(ErrorCodes.PROTOCOL, `The proxy at ${ctx.host} did not complete a valid WebSocket upgrade (${detail})`, { host: ctx.host, detail });
  }
  return new TunnelError(ErrorCodes.UNREACHABLE, `Connecting to the sandbox proxy at ${ctx.host} failed (${code || detail})`, { host: ctx.host, detail, retryable: code !== '' });
}
