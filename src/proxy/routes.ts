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

/**
 * Resolves a sandbox name (already a valid label) to its route; may reject with a TunnelError.
 * `forget` (when present) drops a cached answer, so the next connection looks the name up again;
 * `closeAll` lets go of every cached route.
 */
export type ResolveRoute = ((sandbox: string) => Promise<SandboxRoute>) & { forget?(sandbox: string): void; closeAll?(): void };

/** Names come from local programs: at most this many routes are kept, the least recently used go first. */
export const MAX_ROUTES = 256;
/**
 * A route is looked up again after this long: a sandbox may be terminated and its name given to a
 * new one, and what the control plane said (proxy base, routing hint, id) may change.
 */
export const ROUTE_TTL_MS = 5 * 60_000;

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
 * The one place a proxied host name becomes a tunnel route. Successes are cached in a bounded,
 * expiring cache (a route that leaves it lets go of what it holds); failures are not cached (the
 * next connection asks again), and `forget` drops a route whose sandbox turned out gone.
 */
export function cachedRoutes(options: Omit<UpgraderOptions, 'sandbox'>, resolve: ResolveRoute = lookedUpRoutes(options), now: () => number = Date.now): ResolveRoute {
  const cache = new Map<string, { route: Promise<SandboxRoute>; at: number }>();
  const drop = (sandbox: string): void => {
    const entry = cache.get(sandbox);
    if (entry === undefined) return;
    cache.delete(sandbox);
    entry.route.then((r) => r.close?.(), () => {});
  };
  const cached: ResolveRoute = (sandbox) => {
    const entry = cache.get(sandbox);
    if (entry !== undefined && now() - entry.at < ROUTE_TTL_MS) {
      // Most recently used last: the Map's order is the eviction order.
      cache.delete(sandbox);
      cache.set(sandbox, entry);
      return entry.route;
    }
    drop(sandbox);
    while (cache.size >= MAX_ROUTES) drop(cache.keys().next().value as string);
    const route = resolve(sandbox);
    const fresh = { route, at: now() };
    cache.set(sandbox, fresh);
    route.catch(() => {
      if (cache.get(sandbox) === fresh) cache.delete(sandbox);
    });
    return route;
  };
  cached.forget = drop;
  cached.closeAll = () => {
    for (const sandbox of [...cache.keys()]) drop(sandbox);
  };
  return cached;
}
