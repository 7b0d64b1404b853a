import { resolveSandbox, type ResolveSandboxOptions, type ResolvedSandbox } from './resolve.js';

export interface SandboxResolver {
  /** Resolves a sandbox once; later calls share the answer (a failure is not remembered). */
  resolve(sandbox: string): Promise<ResolvedSandbox>;
  /** Drops what is known about a sandbox, so the next resolve() looks it up again. */
  forget(sandbox: string): void;
}

/**
 * A resolver for callers that open tunnels to many sandboxes by name (a SOCKS or HTTP proxy mode):
 * each sandbox is looked up once, then the same ResolvedSandbox goes to every openTunnel/forwardStream
 * as `resolvedSandbox`.
 */
export function createSandboxResolver(options: Omit<ResolveSandboxOptions, 'sandbox' | 'signal'>): SandboxResolver {
  const known = new Map<string, Promise<ResolvedSandbox>>();
  return {
    resolve(sandbox) {
      const key = typeof sandbox === 'string' ? sandbox.toLowerCase() : String(sandbox);
      let found = known.get(key);
      if (!found) {
        found = resolveSandbox({ ...options, sandbox });
        known.set(key, found);
        found.catch(() => known.get(key) === found && known.delete(key));
      }
      return found;
    },
    forget(sandbox) {
      known.delete(sandbox.toLowerCase());
    },
  };
}
