import { lookupBaseFor, lookupOptionsOf, resolveSandbox, tunnelUrl, resolveProxyTarget, type SandboxStatusEvent, type TunnelOptions } from '../index.js';
import { lookupAgentFor, proxyAgentFor } from './http-proxy.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';

type Options = Omit<TunnelOptions, 'ports'>;

const PROXY_FROM = {
  explicit: '--proxy-url: no lookup',
  setting: 'TENSORLAKE_SANDBOX_PROXY_URL',
  record: "the sandbox record's sandbox_url",
  fallback: 'the default host: the record has no sandbox_url',
  local: 'the local development default (API URL on localhost)',
} as const;

/** Progress of the lookup: the spinner's text on a terminal, a line otherwise. */
export function reportStatus(out: Output, event: SandboxStatusEvent): void {
  if (event.phase === 'note') out.verbose(event.message);
  // Retries are the spinner's text on a terminal, and -v lines otherwise, as for the tunnels' own.
  else if (event.phase === 'lookup' || event.phase === 'retry') out.updateSpinner(event.message);
  else out.progress(event.message);
}

/** Whether the sandbox will be looked up before the tunnels open (validates the lookup base). */
export function willLookUp(options: Options): boolean {
  return options.resolvedSandbox === undefined && lookupBaseFor(options) !== undefined;
}

/**
 * Resolves the sandbox once, before anything listens, and picks the HTTP proxy agents for the
 * lookup and for the tunnels (the tunnels' host is known only after the lookup).
 */
export async function prepareSandbox(config: CliConfig, options: Options, out: Output, ports: readonly number[]): Promise<Options> {
  const base = lookupBaseFor(options);
  const lookupAgent = base === undefined ? undefined : await lookupAgentFor(config, base, out);
  const onSandboxStatus = (event: SandboxStatusEvent): void => reportStatus(out, event);
  const resolved = await resolveSandbox({
    ...lookupOptionsOf({ ...options, lookupAgent }),
    sandbox: options.sandbox,
    waitMs: config.waitMs > 0 ? config.waitMs : undefined,
    onStatus: onSandboxStatus,
  });
  if (resolved.lookedUp) {
    out.verbose(`Sandbox ${resolved.requested}: id ${resolved.id}, ${resolved.status}${resolved.routingHint ? ', with a routing hint' : ''}`);
  }
  out.verbose(`Proxy ${resolved.proxyUrl} (from ${PROXY_FROM[resolved.proxyUrlSource]})`);
  const target = resolveProxyTarget(resolved.id, resolved.proxyUrl, options.allowInsecure);
  for (const port of new Set(ports)) out.verbose(`Tunnel URL ${tunnelUrl(target, port)}`);
  // Only what a lookup found is news: with an explicit proxy the script knows all of it already.
  if (resolved.lookedUp) out.event('sandbox', { sandbox: resolved.requested, id: resolved.id, status: resolved.status, proxyUrl: resolved.proxyUrl });
  const prepared: Options = { ...options, resolvedSandbox: resolved, onSandboxStatus, ...(lookupAgent ? { lookupAgent } : {}) };
  const agent = await proxyAgentFor(config, prepared, out);
  return agent ? { ...prepared, agent } : prepared;
}
