import type { ClientRequest } from 'node:http';
import type WebSocket from 'ws';
import { credentialHeaders, credentialsHint, type Credentials } from '../config/credentials.js';
import { TunnelError, registerSecret } from '../errors.js';
import { hostLabel, parseSandboxName } from '../config/sandbox-name.js';
import { resolveProxyTarget, tunnelUrl, type ProxyTarget } from '../config/proxy-url.js';
import type { ResolvedSandbox } from '../sandbox/resolve.js';
import type { SandboxWatch } from '../sandbox/watch.js';
import { connectWebSocket, type RetryInfo } from './connect.js';
import { resolveOptions, type ResolvedOptions, type TunnelOptions } from './options.js';
import { VERSION } from '../version.js';
import type { Connector } from './warm/connector.js';
import { acquireConnector, type ConnectorLease } from './warm/shared.js';

/** Headers that route or authenticate a tunnel: ours alone, whatever a caller's `headers` hold. */
const OWN_HEADERS = new Set(['authorization', 'host', 'x-tensorlake-sandbox-id', 'x-tensorlake-route-hint', 'x-forwarded-organization-id', 'x-forwarded-project-id']);

function callerHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => !OWN_HEADERS.has(name.toLowerCase())));
}

/** A local stack's proxy, which routes on `Host: <id>.local` (exactly these names, as upstream). */
const LOCAL_PROXY_HOSTS = new Set(['localhost', '127.0.0.1']);

interface ConnectOptions {
  signal?: AbortSignal;
  waitMs?: number;
  onRetry?: (info: RetryInfo) => void;
  /** The start-up check: a refused connection is a wrong URL, not retried. */
  startup?: boolean;
}

export type UpgraderOptions = Omit<TunnelOptions, 'ports'>;

/**
 * Everything needed to open tunnel WebSockets to one sandbox: validated once, used for every
 * connection. Holds the secret headers; never exposes them.
 */
export class Upgrader {
  readonly sandbox: string;
  readonly target: ProxyTarget;
  readonly settings: ResolvedOptions;
  private readonly headers: Record<string, string>;
  private readonly proxyRefused = new WeakSet<ClientRequest>();
  /**
   * Where upgrades get their sockets: warm ones when the pool has them, else fresh ones sharing
   * one TLS secure context and session cache, so each new tunnel resumes the session instead of a
   * full handshake (ws alone calls tls.connect afresh).
   */
  private readonly connector: Connector;
  private readonly lease: ConnectorLease;

  /** Where the upgrades go: the sandbox's canonical id, proxy base and routing hint. */
  readonly resolved: ResolvedSandbox;

  /** `resolved` comes from resolveSandbox(); prepareUpgrader() makes Upgraders. */
  constructor(
    private readonly options: UpgraderOptions,
    resolved: ResolvedSandbox,
    private readonly watch?: SandboxWatch,
  ) {
    // Before any validation: its messages quote what they reject, and a key pasted into the wrong
    // option must come out redacted.
    const given = (options as { credentials?: unknown }).credentials as Credentials | null | undefined;
    registerSecret(typeof given?.apiKey === 'string' ? given.apiKey : undefined);
    registerSecret(typeof given?.pat === 'string' ? given.pat : undefined);
    this.sandbox = parseSandboxName(options.sandbox);
    this.settings = resolveOptions(options as TunnelOptions);
    this.resolved = resolved;
    const { id, routingHint } = resolved;
    this.target = resolveProxyTarget(id, resolved.proxyUrl, options.allowInsecure);
    this.headers = {
      ...callerHeaders(options.headers),
      'user-agent': `tl-tunnel/${VERSION}`,
      // A local stack's proxy (exactly localhost or 127.0.0.1, as upstream) routes on the Host name,
      // which then replaces the id header; every other proxy gets the canonical id in its header.
      ...(LOCAL_PROXY_HOSTS.has(this.target.hostname) ? { host: `${hostLabel(id)}.local` } : { 'x-tensorlake-sandbox-id': id }),
      ...(routingHint ? { 'x-tensorlake-route-hint': routingHint } : {}),
      ...credentialHeaders(options.credentials),
    };
    const origin = new URL(this.target.origin);
    const port = Number(origin.port) || (this.target.secure ? 443 : 80);
    this.lease = acquireConnector({ host: this.target.hostname, port, secure: this.target.secure }, options.agent, this.settings.prewarm);
    this.connector = this.lease.connector;
    // An HTTP CONNECT proxy that refuses replays its own answer as if it were the sandbox proxy's;
    // remember which requests that happened to, so a proxy's 403 is not reported as a bad key.
    const agent = options.agent as (typeof options.agent & { on?: (e: string, l: (...a: never[]) => void) => void }) | undefined;
    agent?.on?.('proxyConnect', ((connect: { statusCode: number }, req: ClientRequest) => {
      if (connect.statusCode !== 200) this.proxyRefused.add(req);
    }) as (...a: never[]) => void);
  }

  /** The URL of the upgrade for one port (contains no secret). */
  url(remotePort: number): string {
    return tunnelUrl(this.target, remotePort);
  }

  /** Starts opening warm connections now (no-op with --no-prewarm). */
  prewarm(): void {
    this.connector.start();
  }

  /** Closes the warm connections; upgrades after this connect afresh. */
  close(): void {
    this.lease.release();
  }

  /**
   * Opens one tunnel WebSocket. When it fails with 404 or 502 and the sandbox can be looked up, the
   * error says why (suspended, terminated); a sandbox resumed meanwhile gets one more try.
   */
  async connect(remotePort: number, opts: ConnectOptions = {}): Promise<WebSocket> {
    try {
      return await this.connectOnce(remotePort, opts);
    } catch (err) {
      if (!this.watch || !(err instanceof TunnelError) || opts.signal?.aborted) throw err;
      const verdict = await this.watch.explain(err);
      if (!verdict.retry || opts.signal?.aborted) throw verdict.retry ? err : verdict.error;
      return this.connectOnce(remotePort, opts);
    }
  }

  private connectOnce(remotePort: number, opts: ConnectOptions): Promise<WebSocket> {
    return connectWebSocket({
      url: this.url(remotePort),
      headers: this.headers,
      ctx: {
        sandbox: this.sandbox,
        remotePort,
        // host:port as the user wrote it: "127.0.0.1" alone hides which server refused.
        host: new URL(this.target.origin).host,
        perSandboxHost: this.target.perSandboxHost,
        secure: this.target.secure,
        viaHttpProxy: describeProxyAgent(this.options.agent),
        authHint: credentialsHint(this.options.credentials),
        httpProxyAuth: sendsProxyCredentials(this.options.agent),
      },
      timeoutMs: this.settings.connectTimeoutMs,
      waitMs: opts.waitMs ?? this.settings.waitMs,
      agent: this.options.agent,
      connector: this.connector,
      proxyRefused: this.proxyRefused,
      maxPayload: this.settings.maxPayload,
      signal: opts.signal,
      onRetry: opts.onRetry,
      refusedIsFinal: opts.startup === true,
    });
  }
}

/**
 * "host:port" of an HTTP proxy agent that exposes its proxy URL (as https-proxy-agent does), so
 * messages can blame the right hop; undefined for any other agent.
 */
function describeProxyAgent(agent: object | undefined): string | undefined {
  const proxy = (agent as { proxy?: unknown } | undefined)?.proxy;
  return proxy instanceof URL ? proxy.host : undefined;
}

/** Whether an HTTP proxy agent sends credentials (in its URL or a Proxy-Authorization header). */
function sendsProxyCredentials(agent: object | undefined): boolean {
  const a = agent as { proxy?: unknown; proxyHeaders?: unknown } | undefined;
  if (a?.proxy instanceof URL && (a.proxy.username !== '' || a.proxy.password !== '')) return true;
  const headers = a?.proxyHeaders;
  return headers !== null && typeof headers === 'object' && Object.keys(headers).some((h) => h.toLowerCase() === 'proxy-authorization');
}
