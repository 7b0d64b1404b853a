import { ErrorCodes, TunnelError, isTunnelError, parsePortSpecs, parseSandboxName, resolveCredentials, type TunnelOptions } from '../index.js';
import { exitCodeFor } from './exit-codes.js';
import { Output } from './output.js';
import { parseArgs, type CliConfig } from './program.js';
import { runForward } from './forward.js';
import { runStdio } from './stdio.js';
import { proxyAgentFor } from './http-proxy.js';

function outputFor(config?: CliConfig): Output {
  const tty = process.stderr.isTTY === true;
  return new Output({
    json: config?.json ?? false,
    verbosity: config?.quiet ? 'quiet' : config?.verbose ? 'verbose' : 'normal',
    tty,
    color: tty && !process.env.NO_COLOR,
  });
}

async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed.kind === 'done') return 0;
  const config = parsed.config;
  const out = outputFor(config);
  try {
    // Arguments first: a typo is reported before anything is read or sent.
    parseSandboxName(config.sandbox);
    if (!config.stdio) parsePortSpecs(config.specs);
    const found = resolveCredentials({ apiKey: config.apiKey, pat: config.pat });
    for (const w of found.warnings) out.warning({ code: 'TL_WARN_CREDENTIALS', message: w });
    if (found.source === 'none') {
      throw new TunnelError(ErrorCodes.NO_CREDENTIALS, 'No API key: set TENSORLAKE_API_KEY or pass --api-key (e.g. export TENSORLAKE_API_KEY=tl_apiKey_...), or run tl login');
    }
    out.verbose(`Credentials from ${found.source}`);
    const options: Omit<TunnelOptions, 'ports'> = {
      sandbox: config.sandbox,
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
    return await (config.stdio ? runStdio(config, options, out) : runForward(config, options, out));
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
  run(argv).then(
    (code) => process.exit(code),
    (err: unknown) => process.exit(fail(err, outputFor(), process.argv.includes('--verbose') || process.argv.includes('-v'))),
  );
}
