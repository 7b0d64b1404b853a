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
  /** The sandbox exists but is suspended, terminated, or did not start running in time. */
  SANDBOX_NOT_RUNNING: 'TL_ERR_SANDBOX_NOT_RUNNING',
  /** The sandbox lookup failed: an unexpected status, or an answer that is not a sandbox record. */
  LOOKUP: 'TL_ERR_LOOKUP',
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
  /** The process or the system ran out of file descriptors (EMFILE / ENFILE). */
  FD_LIMIT: 'TL_ERR_FD_LIMIT',
  /** The tunnel was stopped (Ctrl-C, SIGTERM, close(), a server stop) before its connection ended: cut, not completed. */
  INTERRUPTED: 'TL_ERR_INTERRUPTED',
  /** The per-user control directory of running tunnels is unsafe or unusable (owner, mode, a link). */
  CONTROL: 'TL_ERR_CONTROL',
  /** `stop` or `logs` named no running tunnel. */
  NO_SUCH_TUNNEL: 'TL_ERR_NO_SUCH_TUNNEL',
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
    // Messages quote what was typed and what a peer sent: short secrets go too, and no control
    // character can reach a terminal through them.
    super(sanitizeText(redactStrict(message), 2000), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TunnelError';
    this.code = code;
    this.status = details.status;
    // The peer's own words, kept faithful for JSON (which escapes them) but capped.
    this.proxyError = details.proxyError === undefined ? undefined : capText(redactStrict(details.proxyError), 300);
    this.proxyCode = details.proxyCode === undefined ? undefined : capText(redactStrict(details.proxyCode), 100);
    this.host = details.host;
    this.detail = details.detail === undefined ? undefined : capText(redactStrict(details.detail), 4000);
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
 * Long secrets are hidden wherever they appear. Short or all-digit ones (a 3-character proxy
 * password, a numeric PIN) would also match inside ordinary words and numbers, so they are hidden
 * only as whole tokens, and only by redactStrict(): in messages and in strings a peer sent.
 */
const secrets = new Set<string>();
const shortSecrets = new Set<string>();
/** Below this, even a whole-token match would hide ordinary words ("a", "to"). */
const MIN_SECRET_LENGTH = 3;
const LONG_SECRET_LENGTH = 8;

export function registerSecret(secret: string | undefined): void {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) return;
  const into = secret.length >= LONG_SECRET_LENGTH && !/^[0-9]+$/.test(secret) ? secrets : shortSecrets;
  // The forms a message may quote it in: inside JSON (an event line) or inside a URL.
  into.add(secret);
  into.add(JSON.stringify(secret).slice(1, -1));
  into.add(encodeURIComponent(secret));
}

/**
 * Key and token shapes, whoever's they are: a Tensorlake API key pasted into the wrong argument,
 * Bearer tokens, JWT-shaped tokens, URL userinfo (user:password@ or a lone token@).
 */
const TENSORLAKE_KEY = /\btl_apiKey_[A-Za-z0-9_-]+/g;
const JWT = /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
const BEARER = /(bearer\s+)[^\s"',;]{8,}/gi;
const USERINFO = /(\/\/)([^/\s@"']+)@/g;
/** The placeholder of our own hints (http://user:password@host:port) is not a credential. */
const PLACEHOLDER = /^user(name)?(:pass(word)?)?$/i;

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  // Tokens are long: prose such as "invalid bearer token" is left alone.
  return out
    .replace(TENSORLAKE_KEY, '[redacted]')
    .replace(JWT, '[redacted]')
    .replace(BEARER, '$1[redacted]')
    .replace(USERINFO, (match: string, slashes: string, user: string) => (PLACEHOLDER.test(user) ? match : `${slashes}[redacted]@`));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** redact(), and short secrets as whole tokens: for messages and strings a peer sent, never numbers. */
export function redactStrict(text: string): string {
  let out = redact(text);
  for (const secret of shortSecrets) {
    if (out.includes(secret)) out = out.replace(new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(secret)}(?![A-Za-z0-9])`, 'g'), '[redacted]');
  }
  return out;
}

// C0 and C1 controls, DEL, and the Unicode marks that reorder or hide text (bidi embeddings,
// overrides and isolates, the Arabic letter mark).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes a string safe to show on one terminal line: control characters (ESC sequences, CR/LF that
 * would forge lines) and bidi controls become spaces, and it is cut to `max` characters.
 */
export function sanitizeText(text: string, max = 300): string {
  const clean = text.replace(UNSAFE, ' ');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** Caps a string taken from a peer without changing what remains (for JSON fields). */
export function capText(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Quotes what the user typed in a message: JSON-quoted, control characters escaped, at most 60 characters. */
export function quoteInput(text: string, max = 60): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}
