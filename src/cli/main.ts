// Only light modules load up front, so --version and --help start fast: the library loads ws
// only when a tunnel is about to open. The CLI uses nothing but the public API in index.ts.
import {
  ErrorCodes,
  TunnelError,
  checkResolvedCredentials,
  isLocalApiUrl,
  isTunnelError,
  LOCAL_PROXY_URL,
  lookupBaseFor,
  parseBindAddress,
  parsePortSpecs,
  parseSandboxName,
  resolveCredentials,
  resolveProxyTarget,
  type TunnelOptions,
} from '../index.js';
import { exitCodeFor } from './exit-codes.js';
import { Output } from './output.js';
import { parseArgs, type CliConfig } from './program.js';
import { registerCliSecrets } from './secrets.js';
import { guardStdStreams, isOpen } from './std-streams.js';
import { isInteractive, wantsColor } from './terminal-kind.js';
import { DETACH_ID_ENV } from './lifecycle/register.js';

function outputFor(config?: Partial<Pick<CliConfig, 'json' | 'quiet' | 'verbose' | 'status'>>): Output {
  return new Output({
    json: config?.json ?? false,
    verbosity: config?.quiet ? 'quiet' : config?.verbose ? 'verbose' : 'normal',
    tty: isInteractive(),
    color: wantsColor(),
    status: config?.status ?? true,
  });
}

async function run(argv: string[]): Promise<number> {
  registerCliSecrets(argv);
  const parsed = parseArgs(argv);
  if (parsed.kind === 'done') return 0;
  const config = parsed.config;
  const out = outputFor(config);
  try {
    // Every token found (registered for redaction as it is read) before any message can quote an argument.
    const found = resolveCredentials({ apiKey: config.apiKey, pat: config.pat, apiUrl: config.apiUrl, organizationId: config.organizationId, projectId: config.projectId });
    // Arguments next: a typo is reported before anything is sent.
    const sandbox = config.sandbox === undefined ? undefined : parseSandboxName(config.sandbox);
    const address = config.address === undefined ? undefined : parseBindAddress(config.address, '--address');
    if (config.proxyListen?.address !== undefined) parseBindAddress(config.proxyListen.address, '-D/--proxy-port');
    if (!config.stdio && config.specs.length > 0) parsePortSpecs(config.specs, address);
    // Proxy mode without a sandbox: a stand-in name, only for checking the proxy URL and for the
    // HTTP proxy's NO_PROXY match; each proxied connection names its own sandbox.
    const named = sandbox ?? 'sandbox';
    if (config.proxyUrl !== undefined) resolveProxyTarget(named, config.proxyUrl, config.allowInsecure);
    if (config.fallbackProxyUrl !== undefined) resolveProxyTarget(named, config.fallbackProxyUrl, config.allowInsecure);
    for (const w of found.warnings) out.warning({ code: 'TL_WARN_CREDENTIALS', message: w });
    checkResolvedCredentials(found);
    out.verbose(`Credentials from ${found.source}`);
    // With --proxy-url there is no lookup: the API URL then at most picks tl login's entry.
    if (config.proxyUrl === undefined) {
      out.verbose(`API URL ${found.apiUrl} (from ${found.sources.apiUrl})`);
      if (config.sandboxApiUrl) out.verbose('Sandbox lookup at TENSORLAKE_SANDBOX_API_URL');
    } else {
      const use = found.sources.token === found.files.credentials ? `it only picks the token in ${found.files.credentials}` : 'not used';
      out.verbose(`API URL ${found.apiUrl} (from ${found.sources.apiUrl}; ${use}: --proxy-url skips the lookup)`);
    }
    if (found.credentials.organizationId) out.verbose(`Organization from ${found.sources.organizationId}`);
    if (found.credentials.projectId) out.verbose(`Project from ${found.sources.projectId}`);
    keyDestinationNotice(found, config, out);
    const options: Omit<TunnelOptions, 'ports'> = {
      // The normalised (lower-case) name, so every line names the sandbox the same way.
      sandbox: named,
      credentials: found.credentials,
      apiUrl: found.apiUrl,
      sandboxApiUrl: config.sandboxApiUrl,
      resume: config.resume,
      proxyUrl: config.proxyUrl,
      fallbackProxyUrl: config.fallbackProxyUrl,
      namespace: config.namespace,
      allowInsecure: config.allowInsecure,
      address: config.address,
      connectTimeoutMs: config.connectTimeoutMs,
      keepaliveMs: config.keepaliveMs,
      lingerMs: config.lingerMs,
      maxConnections: config.maxConnections,
      waitMs: config.waitMs,
      prewarm: config.prewarm,
    };
    if (config.stdio) return await (await import('./stdio.js')).runStdio(config, options, out);
    if (config.detach && process.env[DETACH_ID_ENV] === undefined) return await (await import('./lifecycle/detach.js')).runDetached(argv, config, out);
    return await (await import('./forward.js')).runForward(config, options, out);
  } catch (err) {
    return fail(err, out, config.verbose);
  }
}

/**
 * A project config file (found by the upward search, so possibly in a cloned repository) chose the
 * API URL, and so the host the key is sent to, while the key itself came from elsewhere: say once,
 * even without -v, which host gets the key and which file chose it.
 */
function keyDestinationNotice(found: ReturnType<typeof resolveCredentials>, config: CliConfig, out: Output): void {
  const file = found.files.local;
  if (file === undefined || found.sources.apiUrl !== file || found.sources.token === file) return;
  // A lookup base or proxy URL the user named decides where the key goes, not the file.
  if (config.sandboxApiUrl !== undefined || config.proxyUrl !== undefined) return;
  let base: string | undefined;
  try {
    // Local development (a localhost API URL) sends the key to the local proxy, without a lookup.
    base = isLocalApiUrl(found.apiUrl) ? LOCAL_PROXY_URL : lookupBaseFor({ apiUrl: found.apiUrl, allowInsecure: config.allowInsecure });
  } catch {
    return; // A base that cannot be used is refused, with its own message, before anything is sent.
  }
  if (base === undefined) return;
  const host = new URL(base).host;
  const message = `Your key (from ${found.sources.token ?? 'none'}) will be sent to ${host}, because the API URL comes from ${file}`;
  out.warning({ code: 'TL_WARN_KEY_DESTINATION', message, host, file } as { code: string; message: string });
}

function fail(err: unknown, out: Output, verbose: boolean): number {
  const error = isTunnelError(err) ? err : new TunnelError(ErrorCodes.INTERNAL, `Unexpected error: ${(err as Error)?.message ?? String(err)}${verbose ? '' : ' (run with --verbose for details)'}`, { detail: (err as Error)?.stack });
  out.fatal(error);
  return exitCodeFor(error.code);
}

/** Runs the CLI and exits with the code of the exit-code table. */
export function main(argv: string[] = process.argv): void {
  // Nobody reading our output is no reason to drop the tunnels.
  guardStdStreams();
  // A bug must not end in Node's raw stack trace, which could quote a secret: report it redacted.
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    process.on(event, crash);
  }
  run(argv).then((code) => exitAfterFlush(code), crash);

  // Errors that escaped run() (its own output is gone with it): report from the raw arguments.
  function crash(err: unknown): void {
    const verbose = argv.includes('--verbose') || argv.includes('-v');
    // With --stdio, stdout carries the tunnel's bytes: never a JSON event there.
    const json = argv.includes('--json') && !argv.includes('--stdio');
    exitAfterFlush(fail(err, outputFor({ json, verbose }), verbose));
  }
}

/**
 * Writes to pipes are asynchronous on POSIX: exiting at once could cut off the last JSON event or
 * the exit summary. Wait for both streams to drain, but not for a reader that never reads.
 */
function exitAfterFlush(code: number): void {
  const streams = [process.stdout, process.stderr].filter(isOpen);
  let pending = streams.length;
  if (pending === 0) process.exit(code);
  const done = (): void => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  for (const stream of streams) stream.write('', done);
  setTimeout(() => process.exit(code), 2000);
}
