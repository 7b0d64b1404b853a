import type { Agent } from 'node:http';
import { ErrorCodes, TunnelError, registerSecret, usageError } from '../errors.js';
import type { Credentials } from '../config/credentials.js';
import { DEFAULT_PROXY_DOMAIN, resolveProxyTarget } from '../config/proxy-url.js';
import { hostLabel, parseSandboxName } from '../config/sandbox-name.js';
import { SandboxApi } from './api.js';
import { LOCAL_PROXY_URL, checkLookupBase, deriveLookupBase, isLocalApiUrl } from './lookup-base.js';
import type { SandboxRecord } from './record.js';
import { peerText } from './record.js';
import { askPatiently } from './patience.js';
import { untilRunning } from './wait.js';

export interface SandboxStatusEvent {
  /** The sandbox as the caller named it. */
  sandbox: string;
  /** lookup: asking the control plane; retry: asking again after a busy answer or a failed poll; waiting: not running yet; resuming: resume requested; note: worth a -v line. */
  phase: 'lookup' | 'retry' | 'waiting' | 'resuming' | 'note';
  status?: string;
  /** One line for a person. */
  message: string;
}

export interface ResolveSandboxOptions {
  /** Sandbox id or name. */
  sandbox: string;
  credentials: Credentials;
  /** Tensorlake API URL; the lookup base is derived from it. Default https://api.tensorlake.ai. */
  apiUrl?: string;
  /** Lookup base (TENSORLAKE_SANDBOX_API_URL); wins over the one derived from apiUrl. */
  sandboxApiUrl?: string;
  /** An explicit proxy base: no lookup unless sandboxApiUrl is given too, and it wins over sandbox_url. */
  proxyUrl?: string;
  /** The proxy base when the record has no sandbox_url, and in local development (TENSORLAKE_SANDBOX_PROXY_URL). */
  fallbackProxyUrl?: string;
  /** Local development: the namespace of the lifecycle calls ({apiUrl}/v1/namespaces/<namespace>/sandboxes/...). Default "default". */
  namespace?: string;
  allowInsecure?: boolean;
  /** Resume a suspended sandbox instead of failing. */
  resume?: boolean;
  /** How long to wait for a pending (or resumed) sandbox to run. Default 120000. */
  waitMs?: number;
  /** Deadline of each lookup request, and how long busy answers (429, 500, 502-504) to the first one are retried. Default 10000. */
  requestTimeoutMs?: number;
  /** Agent for the lookup requests (e.g. an HTTP CONNECT proxy agent). */
  agent?: Agent;
  signal?: AbortSignal;
  onStatus?: (event: SandboxStatusEvent) => void;
  /** Poll interval while waiting. Default 1000. */
  pollMs?: number;
}

/** Where the tunnels of one sandbox go: plain data, safe to cache and to share between tunnels. */
export interface ResolvedSandbox {
  /** The sandbox as the caller named it (lower-cased). */
  requested: string;
  /** Canonical id: sent as X-Tensorlake-Sandbox-Id (and in Host for a loopback proxy). */
  id: string;
  name?: string;
  /** Status from the record; "unknown" without a lookup. */
  status: string;
  /** The proxy base the tunnels use. */
  proxyUrl: string;
  /** explicit: --proxy-url; record: sandbox_url; setting: fallbackProxyUrl (TENSORLAKE_SANDBOX_PROXY_URL); fallback: https://<id>.sandbox.tensorlake.ai; local: a local stack's default. */
  proxyUrlSource: 'explicit' | 'record' | 'setting' | 'fallback' | 'local';
  routingHint?: string;
  /** Whether the control plane was asked. */
  lookedUp: boolean;
  /** The lookup base, when there is one (for later lookups while tunnels run). */
  lookupBase?: string;
}

export const DEFAULT_SANDBOX_WAIT_MS = 120_000;

/** The lookup settings carried by tunnel options (where the lookup's agent is `lookupAgent`). */
export type LookupSettings = Pick<ResolveSandboxOptions, 'credentials' | 'apiUrl' | 'sandboxApiUrl' | 'proxyUrl' | 'fallbackProxyUrl' | 'namespace' | 'allowInsecure' | 'resume'> & { lookupAgent?: Agent; connectTimeoutMs?: number };

/** The resolveSandbox() options that tunnel options imply (sandbox, wait and callbacks aside). */
export function lookupOptionsOf(o: LookupSettings): Omit<ResolveSandboxOptions, 'sandbox'> {
  return {
    credentials: o.credentials,
    apiUrl: o.apiUrl,
    sandboxApiUrl: o.sandboxApiUrl,
    proxyUrl: o.proxyUrl,
    fallbackProxyUrl: o.fallbackProxyUrl,
    namespace: o.namespace,
    allowInsecure: o.allowInsecure,
    resume: o.resume,
    agent: o.lookupAgent,
    // The connect timeout bounds the lookup as it bounds each tunnel's opening.
    ...(o.connectTimeoutMs !== undefined ? { requestTimeoutMs: o.connectTimeoutMs } : {}),
  };
}

/** The lookup base to use, or undefined when there is no lookup; validated before the token goes there. */
export function lookupBaseFor(options: Pick<ResolveSandboxOptions, 'apiUrl' | 'sandboxApiUrl' | 'proxyUrl' | 'allowInsecure'>): string | undefined {
  if (options.sandboxApiUrl !== undefined && options.sandboxApiUrl.trim() !== '') {
    return checkLookupBase(options.sandboxApiUrl, 'TENSORLAKE_SANDBOX_API_URL', options.allowInsecure);
  }
  if (options.proxyUrl !== undefined) return undefined;
  const apiUrl = options.apiUrl ?? 'https://api.tensorlake.ai';
  if (isLocalApiUrl(apiUrl)) return undefined;
  return checkLookupBase(deriveLookupBase(apiUrl), 'lookup base derived from the API URL (--api-url / TENSORLAKE_API_URL)', options.allowInsecure);
}

function checkOptions(options: ResolveSandboxOptions): void {
  if (options === null || typeof options !== 'object') throw usageError('resolveSandbox expects an options object: { sandbox, credentials, ... }');
  const o = options as unknown as Record<string, unknown>;
  for (const name of ['apiUrl', 'sandboxApiUrl', 'proxyUrl', 'fallbackProxyUrl', 'namespace'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'string') throw usageError(`Invalid option ${name}: expected a string`);
  }
  for (const name of ['waitMs', 'requestTimeoutMs', 'pollMs'] as const) {
    const v = o[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 86_400_000)) throw usageError(`Invalid option ${name}: expected milliseconds from 0 to 86400000`);
  }
}

/**
 * Local development (a localhost API URL) has no lookup, as upstream; but `--resume` needs the
 * lifecycle calls, which a local stack serves at {apiUrl}/v1/namespaces/<namespace>/sandboxes/...
 */
function localLifecycleBase(options: ResolveSandboxOptions): string | undefined {
  const apiUrl = options.apiUrl;
  if (options.resume !== true || apiUrl === undefined || !isLocalApiUrl(apiUrl) || options.proxyUrl !== undefined || options.sandboxApiUrl) return undefined;
  const namespace = options.namespace?.trim() || 'default';
  if (/[/?#%\s]/.test(namespace)) throw usageError(`Invalid namespace ${JSON.stringify(namespace.slice(0, 60))}: no /, ?, #, % or spaces`);
  return checkLookupBase(`${apiUrl.trim().replace(/\/+$/, '')}/v1/namespaces/${namespace}`, 'local lifecycle API (--api-url / TENSORLAKE_API_URL)', options.allowInsecure);
}

/** The proxy base from the record, or the documented default host when it has none. */
function proxyFromRecord(record: SandboxRecord, options: ResolveSandboxOptions, say: (e: Omit<SandboxStatusEvent, 'sandbox'>) => void): Pick<ResolvedSandbox, 'proxyUrl' | 'proxyUrlSource'> {
  if (options.proxyUrl !== undefined) return { proxyUrl: options.proxyUrl, proxyUrlSource: 'explicit' };
  if (record.sandboxUrl === undefined && options.fallbackProxyUrl !== undefined) {
    say({ phase: 'note', message: `The record of sandbox ${record.id} has no sandbox_url; using TENSORLAKE_SANDBOX_PROXY_URL` });
    return { proxyUrl: options.fallbackProxyUrl, proxyUrlSource: 'setting' };
  }
  if (record.sandboxUrl === undefined) {
    const proxyUrl = `https://${hostLabel(record.id)}.${DEFAULT_PROXY_DOMAIN}`;
    say({ phase: 'note', message: `The record of sandbox ${record.id} has no sandbox_url; using ${proxyUrl}` });
    return { proxyUrl, proxyUrlSource: 'fallback' };
  }
  let origin: string;
  try {
    const url = new URL(record.sandboxUrl);
    origin = `${url.protocol}//${url.host}`;
    resolveProxyTarget(record.id, origin, options.allowInsecure);
  } catch (err) {
    const why = err instanceof TunnelError ? `: ${err.message}` : '';
    throw new TunnelError(ErrorCodes.LOOKUP, `The record of sandbox ${record.id} has a sandbox_url that cannot be used ("${peerText(record.sandboxUrl, 120)}")${why}`);
  }
  return { proxyUrl: origin, proxyUrlSource: 'record' };
}

/**
 * Finds where the tunnels of a sandbox go, as Tensorlake's own tools do: looks the sandbox up in the
 * control plane (unless an explicit proxy or a local stack says not to), waits while it is pending,
 * resumes it when asked, and picks the proxy base and canonical id. The result is plain data: cache
 * it and hand it to openTunnel({ resolvedSandbox }) as often as needed.
 */
export async function resolveSandbox(options: ResolveSandboxOptions): Promise<ResolvedSandbox> {
  checkOptions(options);
  registerSecret(options.credentials?.apiKey);
  registerSecret(options.credentials?.pat);
  const requested = parseSandboxName(options.sandbox);
  const say = (e: Omit<SandboxStatusEvent, 'sandbox'>): void => options.onStatus?.({ sandbox: requested, ...e });
  // An explicit proxy is checked before anything is sent anywhere.
  if (options.proxyUrl !== undefined) resolveProxyTarget(requested, options.proxyUrl, options.allowInsecure);
  if (options.fallbackProxyUrl !== undefined) resolveProxyTarget(requested, options.fallbackProxyUrl, options.allowInsecure);
  const local = localLifecycleBase(options);
  const base = lookupBaseFor(options) ?? local;
  if (base === undefined) {
    if (options.proxyUrl !== undefined) return { requested, id: requested, status: 'unknown', proxyUrl: options.proxyUrl, proxyUrlSource: 'explicit', lookedUp: false };
    if (options.fallbackProxyUrl !== undefined) return { requested, id: requested, status: 'unknown', proxyUrl: options.fallbackProxyUrl, proxyUrlSource: 'setting', lookedUp: false };
    return { requested, id: requested, status: 'unknown', proxyUrl: LOCAL_PROXY_URL, proxyUrlSource: 'local', lookedUp: false };
  }
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const api = new SandboxApi({ base, credentials: options.credentials, agent: options.agent, timeoutMs });
  say({ phase: 'lookup', message: `Looking up sandbox ${requested} at ${api.host}` });
  const first = await askPatiently(() => api.get(requested, options.signal), {
    budgetMs: timeoutMs,
    signal: options.signal,
    onRetry: (attempt, error) => say({ phase: 'retry', message: `${error.message}; asking again (attempt ${attempt + 1})` }),
  });
  const record = await untilRunning(api, requested, first, {
    resume: options.resume === true,
    waitMs: options.waitMs ?? DEFAULT_SANDBOX_WAIT_MS,
    pollMs: options.pollMs ?? 1000,
    signal: options.signal,
    say,
  });
  return {
    requested,
    id: record.id,
    ...(record.name ? { name: record.name } : {}),
    status: record.status,
    // A local stack's records carry no proxy base: its proxy is the setting, or the default.
    ...(local !== undefined ? { proxyUrl: options.fallbackProxyUrl ?? LOCAL_PROXY_URL, proxyUrlSource: options.fallbackProxyUrl ? ('setting' as const) : ('local' as const) } : proxyFromRecord(record, options, say)),
    ...(record.routingHint ? { routingHint: record.routingHint } : {}),
    lookedUp: true,
    lookupBase: base,
  };
}
