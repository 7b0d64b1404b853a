import type { Agent } from 'node:http';
import { usageError } from '../errors.js';
import type { Credentials } from '../config/credentials.js';
import type { PortMapping } from '../config/port-spec.js';
import type { RetryInfo } from './connect.js';
import type { ResolvedSandbox, SandboxStatusEvent } from '../sandbox/resolve.js';
import type { WarmSettings } from './warm/pool.js';

export interface TunnelOptions {
  /** Sandbox id or name. */
  sandbox: string;
  /** One or more mappings, as objects or port-spec strings ("5432", "15432:5432", ":5432"). */
  ports: ReadonlyArray<PortMapping | string> | PortMapping | string;
  credentials: Credentials;
  /**
   * Explicit proxy base URL: talk to this proxy directly, with no lookup unless sandboxApiUrl is set.
   * Default: the sandbox record's sandbox_url, found by a lookup.
   */
  proxyUrl?: string;
  /** Local development: the namespace of lifecycle calls (resume). Default "default" (INDEXIFY_NAMESPACE in the CLI). */
  namespace?: string;
  /** The proxy base when the sandbox record names none, and in local development (TENSORLAKE_SANDBOX_PROXY_URL): never switches the lookup off. */
  fallbackProxyUrl?: string;
  /** Tensorlake API URL the lookup base is derived from (api.X -> sandbox.X). Default https://api.tensorlake.ai. */
  apiUrl?: string;
  /** Lookup base (GET <base>/sandboxes/<id-or-name>); wins over the one derived from apiUrl. */
  sandboxApiUrl?: string;
  /** Resume a suspended sandbox, at startup and when it is found suspended while tunnels run. */
  resume?: boolean;
  /** Lookup, waiting and resume progress (one line for a person each). */
  onSandboxStatus?: (event: SandboxStatusEvent) => void;
  /** A sandbox already resolved with resolveSandbox(): no lookup at open. */
  resolvedSandbox?: ResolvedSandbox;
  /** HTTP agent for the lookup requests (the upgrades use `agent`). */
  lookupAgent?: Agent;
  /** Allow http:// / ws:// to a non-loopback proxy (the key then travels in clear text). */
  allowInsecure?: boolean;
  /** Bind address for mappings that name none; default loopback (127.0.0.1 and ::1). */
  address?: string;
  /** Budget for each upgrade, retries included. Default 10000. */
  connectTimeoutMs?: number;
  /** WebSocket ping interval; 0 turns keepalive off. Default 15000 (Tensorlake's SDKs ping every 15 s). */
  keepaliveMs?: number;
  /** After the local client half-closes, deliver until the tunnel has been idle this long. Default 2000. */
  lingerMs?: number;
  /** Open tunnels at once; further connections wait. Default 1024. */
  maxConnections?: number;
  /** Make one upgrade per mapping before listening. Default true. */
  check?: boolean;
  /**
   * Keep retrying 502 (service still starting) for this long, at startup and per connection. Default 0.
   * Also bounds the wait for a pending or resumed sandbox to run (default 120 s when 0).
   */
  waitMs?: number;
  /** HTTP agent for the upgrades (e.g. an HTTP CONNECT proxy agent). */
  agent?: Agent;
  /** Largest frame accepted from the proxy. Default 16 MiB. */
  maxPayload?: number;
  /**
   * Keep a few connections to the proxy open ahead of need, so a new tunnel costs one round trip
   * less (TCP) or two (TLS). Default true: up to 4, drained after 60 s without a new connection.
   */
  prewarm?: boolean | { max?: number; idleMs?: number };
  /** Extra headers for every upgrade (never logged). */
  headers?: Record<string, string>;
  /**
   * Called before each retry of a startup-check upgrade (per-connection retries are the handle's
   * `retry` events; the handle does not exist yet while the check runs).
   */
  onStartupRetry?: (info: RetryInfo & { remotePort: number }) => void;
}

export interface ResolvedOptions {
  connectTimeoutMs: number;
  keepaliveMs: number;
  lingerMs: number;
  maxConnections: number;
  waitMs: number;
  maxPayload: number;
  /** Undefined: no warm connections. */
  prewarm: WarmSettings | undefined;
}

function integer(name: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    // Library callers see the option's own name; its unit is in the name (…Ms: milliseconds).
    const unit = name.endsWith('Ms') ? ' milliseconds' : '';
    throw usageError(`Invalid option ${name}: expected a number from ${min} to ${max}${unit}, got ${String(value).slice(0, 40)}`);
  }
  return Math.round(value);
}

// Header names are RFC 7230 tokens; values must not carry CR/LF (a smuggled header) or NUL.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Checks the types a JavaScript caller may get wrong, so they fail as usage errors naming the option. */
function checkShapes(options: TunnelOptions): void {
  const o = options as unknown as Record<string, unknown>;
  if (o.credentials === null || typeof o.credentials !== 'object') {
    throw usageError('Invalid option credentials: expected an object such as { apiKey: process.env.TENSORLAKE_API_KEY }');
  }
  for (const name of ['proxyUrl', 'fallbackProxyUrl', 'namespace', 'address', 'apiUrl', 'sandboxApiUrl'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'string') throw usageError(`Invalid option ${name}: expected a string`);
  }
  for (const name of ['onStartupRetry', 'onSandboxStatus'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'function') throw usageError(`Invalid option ${name}: expected a function`);
  }
  const r = o.resolvedSandbox as Record<string, unknown> | undefined;
  if (r !== undefined && (r === null || typeof r !== 'object' || typeof r.id !== 'string' || typeof r.proxyUrl !== 'string')) {
    throw usageError('Invalid option resolvedSandbox: expected what resolveSandbox() returned');
  }
  if (o.prewarm !== undefined && typeof o.prewarm !== 'boolean' && (o.prewarm === null || typeof o.prewarm !== 'object')) {
    throw usageError('Invalid option prewarm: expected true, false or { max, idleMs }');
  }
  if (o.headers !== undefined) {
    if (o.headers === null || typeof o.headers !== 'object') throw usageError('Invalid option headers: expected an object of header names to strings');
    for (const [name, value] of Object.entries(o.headers)) {
      if (!HEADER_NAME.test(name) || typeof value !== 'string' || !HEADER_VALUE.test(value)) {
        throw usageError(`Invalid option headers: header ${JSON.stringify(name.slice(0, 60))} has a bad name or value (strings without control characters)`);
      }
    }
  }
}

/** Checks the numeric options, naming the option that is wrong. */
export function resolveOptions(options: TunnelOptions): ResolvedOptions {
  checkShapes(options);
  return {
    connectTimeoutMs: integer('connectTimeoutMs', options.connectTimeoutMs, 10_000, 1, 3_600_000),
    keepaliveMs: integer('keepaliveMs', options.keepaliveMs, 15_000, 0, 3_600_000),
    lingerMs: integer('lingerMs', options.lingerMs, 2_000, 0, 3_600_000),
    maxConnections: integer('maxConnections', options.maxConnections, 1024, 1, 1_000_000),
    waitMs: integer('waitMs', options.waitMs, 0, 0, 86_400_000),
    maxPayload: integer('maxPayload', options.maxPayload, 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    prewarm: warmSettings(options.prewarm),
  };
}

function warmSettings(prewarm: TunnelOptions['prewarm']): WarmSettings | undefined {
  if (prewarm === false) return undefined;
  const given = typeof prewarm === 'object' ? prewarm : {};
  const max = integer('prewarm.max', given.max, 4, 0, 64);
  return max === 0 ? undefined : { max, idleMs: integer('prewarm.idleMs', given.idleMs, 60_000, 1, 86_400_000) };
}
