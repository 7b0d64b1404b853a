import type { ClientRequest } from 'node:http';
import type WebSocket from 'ws';
import { credentialHeaders } from '../config/credentials.js';
import { parseSandboxName } from '../config/sandbox-name.js';
import { resolveProxyTarget, tunnelUrl, type ProxyTarget } from '../config/proxy-url.js';
import { connectWebSocket, type RetryInfo } from './connect.js';
import { resolveOptions, type ResolvedOptions, type TunnelOptions } from './options.js';
import { VERSION } from '../version.js';

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

  constructor(private readonly options: UpgraderOptions) {
    this.sandbox = parseSandboxName(options.sandbox);
    this.settings = resolveOptions(options as TunnelOptions);
    this.target = resolveProxyTarget(this.sandbox, options.proxyUrl, options.allowInsecure);
    this.headers = {
      ...options.headers,
      'user-agent': `tl-tunnel/${VERSION}`,
      'x-tensorlake-sandbox-id': this.sandbox,
      ...credentialHeaders(options.credentials),
    };
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

  connect(remotePort: number, opts: { signal?: AbortSignal; waitMs?: number; onRetry?: (info: RetryInfo) => void } = {}): Promise<WebSocket> {
    return connectWebSocket({
      url: this.url(remotePort),
      headers: this.headers,
      ctx: {
        sandbox: this.sandbox,
        remotePort,
        host: this.target.hostname,
        perSandboxHost: this.target.perSandboxHost,
        viaHttpProxy: this.options.agent ? 'in use' : undefined,
      },
      timeoutMs: this.settings.connectTimeoutMs,
      waitMs: opts.waitMs ?? this.settings.waitMs,
      agent: this.options.agent,
      proxyRefused: this.proxyRefused,
      maxPayload: this.settings.maxPayload,
      signal: opts.signal,
      onRetry: opts.onRetry,
    });
  }
}
