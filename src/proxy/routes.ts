import type WebSocket from 'ws';
import type { RetryInfo } from '../client/connect.js';
import type { UpgraderOptions } from '../client/upgrader.js';
import { prepareUpgrader } from '../client/prepare.js';

/** Where tunnels to one sandbox go: what the proxy needs from a sandbox once it is resolved. */
export interface SandboxRoute {
  /** The sandbox as the tunnels name it (canonical once a lookup says so). */
  readonly sandbox: string;
  connect(remotePort: number, opts: { signal?: AbortSignal; onRetry?: (info: RetryInfo) => void }): Promise<WebSocket>;
  /** Lets go of what the route holds open (warm connections). */
  close?(): void;
}

/** Resolves a sandbox name (already a valid label) to its route; may reject with a TunnelError. */
export type ResolveRoute = (sandbox: string) => Promise<SandboxRoute>;

const MAX_CACHED = 1000;

/**
 * Finds a sandbox the way forwarded ports do (the control-plane lookup, statuses, --resume, or the
 * explicit proxy base), then opens its tunnels through one Upgrader.
 */
function lookedUpRoutes(options: Omit<UpgraderOptions, 'sandbox'>): ResolveRoute {
  return async (sandbox) => {
    // As for forwarded ports: statuses, --resume, and failures explained while the tunnels run.
    const upgrader = await prepareUpgrader({ ...options, sandbox });
    // A browser opens several connections to a page's sandbox at once: warm for the next ones.
    upgrader.prewarm();
    return upgrader;
  };
}

/**
 * The one place a proxied host name becomes a tunnel route. Successes are cached, failures are not
 * (the next connection asks again).
 */
export function cachedRoutes(options: Omit<UpgraderOptions, 'sandbox'>, resolve: ResolveRoute = lookedUpRoutes(options)): ResolveRoute {
  const cache = new Map<string, Promise<SandboxRoute>>();
  return (sandbox) => {
    let route = cache.get(sandbox);
    if (route === undefined) {
      // Names come from local clients: bound the cache, forgetting the oldest.
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as string);
      route = resolve(sandbox);
      cache.set(sandbox, route);
      route.catch(() => {
        if (cache.get(sandbox) === route) cache.delete(sandbox);
      });
    }
    return route;
  };
}
