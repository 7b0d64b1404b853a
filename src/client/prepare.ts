import { registerSecret } from '../errors.js';
import { credentialHeaders, type Credentials } from '../config/credentials.js';
import { parseSandboxName } from '../config/sandbox-name.js';
import { DEFAULT_SANDBOX_WAIT_MS, lookupOptionsOf, resolveSandbox } from '../sandbox/resolve.js';
import { SandboxWatch } from '../sandbox/watch.js';
import { resolveOptions, type ResolvedOptions, type TunnelOptions } from './options.js';
import { Upgrader, type UpgraderOptions } from './upgrader.js';

/** Everything that can be checked offline, so that a typo is reported before anything is sent. */
export function checkUpgraderOptions(options: UpgraderOptions): ResolvedOptions {
  // Secrets first: the messages below quote what they reject, and a misplaced key must come out redacted.
  const given = (options as { credentials?: unknown }).credentials as Credentials | null | undefined;
  registerSecret(typeof given?.apiKey === 'string' ? given.apiKey : undefined);
  registerSecret(typeof given?.pat === 'string' ? given.pat : undefined);
  parseSandboxName(options.sandbox);
  const settings = resolveOptions(options as TunnelOptions);
  credentialHeaders(options.credentials);
  return settings;
}

/**
 * Validates the options, resolves the sandbox (lookup, wait, resume) unless it comes resolved, and
 * returns the Upgrader for its tunnels, watching the sandbox while they run when it can be looked up.
 */
export async function prepareUpgrader(options: UpgraderOptions): Promise<Upgrader> {
  const settings = checkUpgraderOptions(options);
  const waitMs = settings.waitMs > 0 ? settings.waitMs : DEFAULT_SANDBOX_WAIT_MS;
  const resolved =
    options.resolvedSandbox ??
    (await resolveSandbox({ ...lookupOptionsOf(options), sandbox: options.sandbox, waitMs, onStatus: options.onSandboxStatus }));
  const lookupBase = resolved.lookupBase;
  const watch =
    resolved.lookedUp && lookupBase !== undefined
      ? new SandboxWatch({ ...resolved, lookupBase }, { credentials: options.credentials, agent: options.lookupAgent, resume: options.resume === true, waitMs, requestTimeoutMs: options.connectTimeoutMs, onStatus: options.onSandboxStatus })
      : undefined;
  return new Upgrader(options, resolved, watch);
}
