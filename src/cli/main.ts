// Only light modules load up front, so --version and --help start fast: the library loads ws
// only when a tunnel is about to open. The CLI uses nothing but the public API in index.ts.
import {
  ErrorCodes,
  TunnelError,
  isTunnelError,
  parseBindAddress,
  parsePortSpecs,
  parseSandboxName,
  registerSecret,
  resolveCredentials,
  resolveProxyTarget,
  tunnelUrl,
  type TunnelOptions,
} from '../index.js';
import { exitCodeFor } from './exit-codes.js';
import { Output } from './output.js';
import { parseArgs, type CliConfig } from './program.js';
import { proxyAgentFor } from './http-proxy.js';
import { registerCliSecrets } from './secrets.js';

function outputFor(config?: Partial<Pick<CliConfig, 'json' | 'quiet' | 'verbose'>>): Output {
  const tty = process.stderr.isTTY === true;
  return new Output({
    json: config?.json ?? false,
    verbosity: config?.quiet ? 'quiet' : config?.verbose ? 'verbose' : 'normal',
    tty,
    color: tty && !process.env.NO_COLOR,
  });
}

async function run(argv: string[]): Promise<number> {
  registerCliSecrets(argv);
  const parsed = parseArgs(argv);
  if (parsed.kind === 'done') return 0;
  const config = parsed.config;
  const out = outputFor(config);
  try {
    const found = resolveCredentials({ apiKey: config.apiKey, pat: config.pat });
    // The stored token too must be known to redact() before any message can quote an argument.
    registerSecret(found.credentials.apiKey);
    registerSecret(found.credentials.pat);
    // Arguments next: a typo is reported before anything is sent.
    const sandbox = parseSandboxName(config.sandbox);
    const address = config.address === undefined ? undefined : parseBindAddress(config.address, '--address');
    const remotePorts = config.stdio ? config.specs.slice(0, 1).map(Number).filter(Number.isInteger) : parsePortSpecs(config.specs, address).map((m) => m.remotePort);
    const target = resolveProxyTarget(sandbox, config.proxyUrl, config.allowInsecure);
    for (const w of found.warnings) out.warning({ code: 'TL_WARN_CREDENTIALS', message: w });
    if (found.source === 'none') {
      throw new TunnelError(ErrorCodes.NO_CREDENTIALS, 'No API key: set TENSORLAKE_API_KEY or pass --api-key (e.g. export TENSORLAKE_API_KEY=tl_apiKey_...), or run tl login');
    }
    out.verbose(`Credentials from ${found.source}`);
    for (const port of new Set(remotePorts)) out.verbose(`Tunnel URL ${tunnelUrl(target, port)}`);
    const options: Omit<TunnelOptions, 'ports'> = {
      // The normalised (lower-case) name, so every line names the sandbox the same way.
      sandbox,
      credentials: found.credentials,
      proxyUrl: config.proxyUrl,
      allowInsecure: config.allowInsecure,
      address: config.address,
      connectTimeoutMs: config.connectTimeoutMs,
      keepaliveMs: config.keepaliveMs,
      lingerMs: config.lingerMs,
      maxConnections: config.maxConnections,
      waitMs: config.waitMs,
    };
    const agent = await proxyAgentFor(config, options, out);
    if (agent) options.agent = agent;
    if (config.stdio) return await (await import('./stdio.js')).runStdio(config, options, out);
    return await (await import('./forward.js')).runForward(config, options, out);
  } catch (err) {
    return fail(err, out, config.verbose);
  }
}

function fail(err: unknown, out: Output, verbose: boolean): number {
  const error = isTunnelError(err) ? err : new TunnelError(ErrorCodes.INTERNAL, `Unexpected error: ${(err as Error)?.message ?? String(err)}${verbose ? '' : ' (run with --verbose for details)'}`, { detail: (err as Error)?.stack });
  out.fatal(error);
  return exitCodeFor(error.code);
}

/** Runs the CLI and exits with the code of the exit-code table. */
export function main(argv: string[] = process.argv): void {
  // A bug must not end in Node's raw stack trace, which could quote a secret: report it redacted.
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    process.on(event, crash);
  }
  run(argv).then((code) => exitAfterFlush(code), crash);

  // Errors that escaped run() (its own output is gone with it): report from the raw arguments.
  function crash(err: unknown): void {
    const verbose = argv.includes('--verbose') || argv.includes('-v');
    exitAfterFlush(fail(err, outputFor({ json: argv.includes('--json'), verbose }), verbose));
  }
}

/**
 * Writes to pipes are asynchronous on POSIX: exiting at once could cut off the last JSON event or
 * the exit summary. Wait for both streams to drain, but not for a reader that never reads.
 */
function exitAfterFlush(code: number): void {
  let pending = 2;
  const done = (): void => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
  setTimeout(() => process.exit(code), 2000);
}
