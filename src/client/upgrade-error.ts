import { ErrorCodes, TunnelError, capText, redactStrict, sanitizeText } from '../errors.js';

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
  /** Whether the URL asked for TLS (https:// or wss://). */
  secure?: boolean;
  /** Whether credentials were sent to that HTTP proxy (so a 401/407 means they were wrong). */
  httpProxyAuth?: boolean;
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
      // Redacted before being cut, so an echoed secret cannot survive as a fragment. Kept as sent
      // (for JSON); messages show them through sanitizeText().
      error: typeof error === 'string' ? capText(redactStrict(error), 300) : undefined,
      code: typeof code === 'string' ? capText(redactStrict(code), 100) : undefined,
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
  // The peer's words go on one line, without control characters, inside our own parentheses.
  const said = body.error ? `proxy said: ${sanitizeText(body.error, 200)}${body.code ? ` [${sanitizeText(body.code, 60)}]` : ''}` : '';
  const paren = (status: number): string => `(${status}${said ? `; ${said}` : ''})`;
  const alone = said ? ` (${said})` : '';
  const details = { status, proxyError: body.error, proxyCode: body.code, host: ctx.host };
  if (fromHttpProxy) {
    const auth = status === 401 || status === 407;
    const what =
      auth && ctx.httpProxyAuth
        ? `refused the credentials in the proxy URL ${paren(status)}`
        : auth
          ? `requires authentication ${paren(status)}: put user:password in the proxy URL`
          : status === 403
            ? `refused to connect to ${ctx.host} ${paren(status)}`
            : `could not connect to ${ctx.host} ${paren(status)}`;
    const proxy = ctx.viaHttpProxy ? `The HTTP proxy ${ctx.viaHttpProxy}` : 'The HTTP proxy';
    const hint = auth && ctx.httpProxyAuth ? 'check the user name and password in --proxy or HTTPS_PROXY / HTTP_PROXY' : `${PROXY_HINT}${auth ? '' : `, or add ${ctx.host} to NO_PROXY`}`;
    return new TunnelError(ErrorCodes.HTTP_PROXY, `${proxy} ${what}; ${hint}`, details);
  }
  switch (status) {
    case 400:
      return new TunnelError(ErrorCodes.BAD_PORT, `The sandbox proxy rejected port ${ctx.remotePort}${alone}`, details);
    case 401:
    case 403:
      return new TunnelError(
        ErrorCodes.AUTH,
        `The sandbox proxy rejected the credentials ${paren(status)}: ${ctx.authHint ?? 'set a valid key with TENSORLAKE_API_KEY or --api-key'}`,
        details,
      );
    case 404:
      return new TunnelError(ErrorCodes.SANDBOX_NOT_FOUND, `No sandbox "${ctx.sandbox}" was found ${paren(status)}: check the sandbox id or name`, details);
    case 502:
      return new TunnelError(ErrorCodes.PORT_CLOSED, `Nothing is listening on port ${ctx.remotePort} inside sandbox ${ctx.sandbox}${alone}`, details);
    default:
      return new TunnelError(ErrorCodes.PROXY_STATUS, `The sandbox proxy at ${ctx.host} answered ${status} instead of opening the tunnel${alone}`, {
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
  if (code === 'EMFILE' || code === 'ENFILE') {
    const who = code === 'EMFILE' ? 'This process is' : 'The system is';
    return new TunnelError(ErrorCodes.FD_LIMIT, `${who} out of file descriptors (${code}): could not open a tunnel to ${ctx.host}; raise the limit (ulimit -n)`, { host: ctx.host, detail });
  }
  if (code === 'ENOTFOUND') {
    return ctx.perSandboxHost
      ? new TunnelError(ErrorCodes.SANDBOX_NOT_FOUND, `No sandbox "${ctx.sandbox}" was found: ${ctx.host} does not resolve`, { host: ctx.host, detail })
      : new TunnelError(ErrorCodes.UNREACHABLE, `Cannot reach the sandbox proxy: ${ctx.host} does not resolve`, { host: ctx.host, detail });
  }
  // EPROTO is OpenSSL failing the handshake (e.g. https:// to a plain HTTP port): not worth retrying.
  if (TLS_CODES.test(code) || code === 'EPROTO') {
    const hint = code === 'EPROTO' ? 'that port does not seem to speak TLS: for a plain proxy on this machine use http://' : 'for a private CA set NODE_EXTRA_CA_CERTS';
    return new TunnelError(ErrorCodes.TLS, `TLS with ${ctx.host} failed (${code}); ${hint}`, { host: ctx.host, detail });
  }
  // A TLS server answers a plain request by hanging up or with a TLS alert the HTTP parser rejects.
  const plainToTls = ctx.secure === false ? '; if that port speaks TLS, use https:// in the proxy URL' : '';
  if (NETWORK_CODES.has(code)) {
    const hint = code === 'ECONNRESET' ? plainToTls : code === 'ECONNREFUSED' ? ': nothing accepts connections on that port' : '';
    // The cause keeps the code: a refusal at start-up is a wrong URL, not worth retrying (connect.ts).
    return new TunnelError(ErrorCodes.UNREACHABLE, `Cannot reach the sandbox proxy at ${ctx.host} (${code})${hint}`, { host: ctx.host, detail, retryable: true, cause: err });
  }
  if (/handshake|Sec-WebSocket|status line|Invalid|Unexpected server response|Parse Error/i.test(detail) || code.startsWith('HPE_')) {
    const hint = code.startsWith('HPE_') || /Parse Error/i.test(detail) ? plainToTls : '';
    return new TunnelError(ErrorCodes.PROTOCOL, `The proxy at ${ctx.host} did not complete a valid WebSocket upgrade (${detail})${hint}`, { host: ctx.host, detail });
  }
  return new TunnelError(ErrorCodes.UNREACHABLE, `Connecting to the sandbox proxy at ${ctx.host} failed (${code || detail})`, { host: ctx.host, detail, retryable: code !== '' });
}
