/**
 * Every failure the library reports is a TunnelError with a stable `code`.
 * The CLI maps codes to exit codes (src/cli/exit-codes.ts); scripts match on `code`,
 * never on message text.
 */
export const ErrorCodes = {
  /** A bad option, argument, port spec or sandbox name. */
  USAGE: 'TL_ERR_USAGE',
  /** No credentials were found. */
  NO_CREDENTIALS: 'TL_ERR_NO_CREDENTIALS',
  /** 401 / 403: the key or token was rejected. */
  AUTH: 'TL_ERR_AUTH',
  /** 404, or the per-sandbox host does not resolve. */
  SANDBOX_NOT_FOUND: 'TL_ERR_SANDBOX_NOT_FOUND',
  /** 502: nothing is listening on the port inside the sandbox. */
  PORT_CLOSED: 'TL_ERR_PORT_CLOSED',
  /** 400: the proxy rejected the port. */
  BAD_PORT: 'TL_ERR_BAD_PORT',
  /** The local address and port could not be bound. */
  LISTEN: 'TL_ERR_LISTEN',
  /** The proxy could not be reached (DNS, refused, reset). */
  UNREACHABLE: 'TL_ERR_UNREACHABLE',
  /** The TLS handshake with the proxy failed (certificate, protocol). */
  TLS: 'TL_ERR_TLS',
  /** The upgrade did not complete within the connect timeout. */
  TIMEOUT: 'TL_ERR_TIMEOUT',
  /** An HTTP proxy (HTTPS_PROXY / --proxy) refused the CONNECT. */
  HTTP_PROXY: 'TL_ERR_HTTP_PROXY',
  /** Any other status from the sandbox proxy (429, 5xx other than 502, ...). */
  PROXY_STATUS: 'TL_ERR_PROXY_STATUS',
  /** The peer broke the tunnel protocol (text frame, bad handshake, oversized frame). */
  PROTOCOL: 'TL_ERR_PROTOCOL',
  /** No pong and no data for two keepalive intervals. */
  KEEPALIVE: 'TL_ERR_KEEPALIVE',
  /** The tunnel WebSocket closed abnormally (1006, 1011, 4xxx ...). */
  REMOTE_CLOSED: 'TL_ERR_REMOTE_CLOSED',
  /** The local client reset its connection. */
  LOCAL_RESET: 'TL_ERR_LOCAL_RESET',
  /** The tunnel was stopped (Ctrl-C, SIGTERM, close(), a server stop) before its connection ended: cut, not completed. */
  INTERRUPTED: 'TL_ERR_INTERRUPTED',
  /** Anything we did not foresee. */
  INTERNAL: 'TL_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface TunnelErrorDetails {
  /** HTTP status of a failed upgrade, when there was one. */
  status?: number;
  /** `error` from the proxy's JSON body. */
  proxyError?: string;
  /** `code` from the proxy's JSON body. */
  proxyCode?: string;
  /** The host that was being contacted (never contains credentials). */
  host?: string;
  /** Low-level detail (already redacted), shown with --verbose. */
  detail?: string;
  /** Whether trying again may succeed (network errors, 429, 5xx). */
  retryable?: boolean;
  cause?: unknown;
}

export class TunnelError extends Error {
  readonly code: ErrorCode;
  readonly status?: number;
  readonly proxyError?: string;
  readonly proxyCode?: string;
  readonly host?: string;
  readonly detail?: string;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, details: TunnelErrorDetails = {}) {
    super(redact(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TunnelError';
    this.code = code;
    this.status = details.status;
    this.proxyError = details.proxyError === undefined ? undefined : redact(details.proxyError);
    this.proxyCode = details.proxyCode === undefined ? undefined : redact(details.proxyCode);
    this.host = details.host;
    this.detail = details.detail === undefined ? undefined : redact(details.detail);
    this.retryable = details.retryable ?? false;
  }

  /** A plain object for JSON event output. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.proxyError === undefined ? {} : { proxyError: this.proxyError }),
      ...(this.proxyCode === undefined ? {} : { proxyCode: this.proxyCode }),
    };
  }
}

export function isTunnelError(err: unknown): err is TunnelError {
  return err instanceof TunnelError;
}

export function usageError(message: string): TunnelError {
  return new TunnelError(ErrorCodes.USAGE, message);
}

/**
 * Secrets that must never appear in any message. The library registers every key it is given,
 * so that errors quoting headers or URLs (from ws or Node) cannot leak them.
 */
const secrets = new Set<string>();

export function registerSecret(secret: string | undefined): void {
  // Very short strings would redact ordinary words; real keys are long.
  if (!secret || secret.length < 6) return;
  secrets.add(secret);
  // The forms a message may quote it in: inside JSON (an event line) or inside a URL.
  secrets.add(JSON.stringify(secret).slice(1, -1));
  secrets.add(encodeURIComponent(secret));
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  // Bearer tokens and URL userinfo (user:password@ or a lone token@), whoever's they are. Tokens
  // are long: prose such as "invalid bearer token" is left alone.
  return out
    .replace(/(bearer\s+)[^\s"',;]{8,}/gi, '$1[redacted]')
    .replace(/(\/\/)[^/\s@"']+@/g, '$1[redacted]@');
}
