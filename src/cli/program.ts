import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ErrorCodes, TunnelError, VERSION } from '../index.js';

export interface CliConfig {
  sandbox: string;
  specs: string[];
  apiKey?: string;
  pat?: string;
  proxyUrl?: string;
  proxy?: string;
  address?: string;
  allowInsecure: boolean;
  check: boolean;
  connectTimeoutMs: number;
  keepaliveMs: number;
  lingerMs: number;
  maxConnections: number;
  waitMs: number;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  stdio: boolean;
}

/** What parsing ended in: a config to run, or help/version already printed. */
export type ParseResult = { kind: 'run'; config: CliConfig } | { kind: 'done' };

const DEFAULT_WAIT_SECONDS = 120;

const EXAMPLES = `
Examples:
  # PostgreSQL: psql on localhost:5432 reaches port 5432 in the sandbox
  $ tl-tunnel sbx-123 5432
  $ psql -h localhost -p 5432 -U postgres

  # Redis on a free local port (printed), waiting for the server to start
  $ tl-tunnel --wait sbx-123 :6379
  $ redis-cli -p <printed port> PING

  # Chrome DevTools of a browser started with --remote-debugging-port=9222
  $ tl-tunnel sbx-123 9222        # then open chrome://inspect, add localhost:9222

  # VNC and several ports at once
  $ tl-tunnel sbx-123 5900 15432:5432

  # SSH: in ~/.ssh/config, then: ssh root@sbx-123
  Host sbx-*
    ProxyCommand tl-tunnel --stdio %h 22

  # Scripts: JSON events on stdout
  $ tl-tunnel --json sbx-123 :5432 | jq -r 'select(.event=="listening") | .addresses[0].port'

Port specs: REMOTE, LOCAL:REMOTE, :REMOTE (free local port), ADDRESS:LOCAL:REMOTE, [::1]:LOCAL:REMOTE
Environment: TENSORLAKE_API_KEY, TENSORLAKE_PAT, TENSORLAKE_ORGANIZATION_ID, TENSORLAKE_PROJECT_ID,
  TENSORLAKE_SANDBOX_PROXY_URL, TENSORLAKE_API_URL, HTTPS_PROXY, HTTP_PROXY, NO_PROXY, NO_COLOR,
  NODE_EXTRA_CA_CERTS
Shell completion: tl-tunnel completion bash|zsh|fish (see the README to install it)
Exit codes: 0 ok, 1 other error, 2 usage, 3 auth, 4 no such sandbox / port never opened,
  5 local port unavailable, 6 proxy unreachable / TLS / timeout
`;

function seconds(name: string, min: number) {
  return (text: string): number => {
    if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || Number(text) < min) {
      throw new InvalidArgumentError(`${name} takes a number of seconds${min > 0 ? ` greater than 0` : ''}, e.g. ${name} 10`);
    }
    return Math.round(Number(text) * 1000);
  };
}

function count(name: string) {
  return (text: string): number => {
    if (!/^[1-9][0-9]{0,6}$/.test(text)) throw new InvalidArgumentError(`${name} takes a whole number from 1, e.g. ${name} 256`);
    return Number(text);
  };
}

/**
 * `--wait` takes an optional number; a bare `--wait` must not swallow the sandbox argument after it.
 */
function normaliseArgv(args: string[]): string[] {
  return args.flatMap((arg, i) => (arg === '--wait' && !/^[0-9]+(\.[0-9]+)?$/.test(args[i + 1] ?? '') ? [`--wait=${DEFAULT_WAIT_SECONDS}`] : [arg]));
}

export function buildProgram(): Command {
  return new Command()
    .name('tl-tunnel')
    .description('Forward local TCP ports into a Tensorlake sandbox.')
    .usage('[options] <sandbox> <port-spec...>')
    .argument('<sandbox>', 'sandbox id or name')
    .argument('<port-spec...>', 'REMOTE | LOCAL:REMOTE | :REMOTE | ADDRESS:LOCAL:REMOTE')
    .option('--api-key <key>', 'API key (default: $TENSORLAKE_API_KEY)')
    .option('--pat <token>', 'personal access token (default: $TENSORLAKE_PAT, then the tl login file)')
    .option('--proxy-url <url>', 'sandbox proxy base URL (default: $TENSORLAKE_SANDBOX_PROXY_URL or https://<sandbox>.sandbox.tensorlake.ai)')
    .option('--proxy <url>', 'HTTP CONNECT proxy (default: $HTTPS_PROXY / $HTTP_PROXY, honouring $NO_PROXY)')
    .option('--address <addr>', 'bind address for specs without one (default: 127.0.0.1 and ::1)')
    .option('--allow-insecure', 'allow http:// or ws:// to a proxy that is not on this machine')
    .option('--no-check', 'skip the startup check of the sandbox and ports')
    .addOption(new Option('--connect-timeout <seconds>', 'time allowed to open each tunnel, retries included').default(10_000, '10').argParser(seconds('--connect-timeout', 0.001)))
    .addOption(new Option('--keepalive <seconds>', 'ping interval; 0 turns keepalive off').default(20_000, '20').argParser(seconds('--keepalive', 0)))
    .addOption(new Option('--linger <seconds>', 'after the local client half-closes, keep delivering until idle this long').default(2_000, '2').argParser(seconds('--linger', 0)))
    .addOption(new Option('--max-connections <n>', 'open tunnels at once; more wait').default(1024).argParser(count('--max-connections')))
    .addOption(new Option('--wait [seconds]', `retry while nothing listens on the port yet (default ${DEFAULT_WAIT_SECONDS} s)`).argParser(seconds('--wait', 0.001)))
    .option('--stdio', 'relay stdin/stdout over one tunnel (SSH ProxyCommand); takes one remote port')
    .option('--json', 'one JSON event per line on stdout')
    .option('-v, --verbose', 'one line per connection, retries and details')
    .option('-q, --quiet', 'errors only')
    .version(VERSION, '-V, --version')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', EXAMPLES)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
      // Errors are reported by the caller, in one line, with exit code 2.
      outputError: () => {},
    });
}

export function parseArgs(argv: string[]): ParseResult {
  const program = buildProgram();
  try {
    program.parse(normaliseArgv(argv.slice(2)), { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.exitCode === 0) return { kind: 'done' };
    const message = err.message.replace(/^error: /, '').replace(/\n[\s\S]*/, '');
    // Argument-shape errors get an example of the right form; option errors carry their own.
    const example = /missingArgument|excessArguments|unknownOption/.test(err.code) ? 'e.g. tl-tunnel sbx-123 5432; ' : '';
    throw new TunnelError(ErrorCodes.USAGE, `${message.charAt(0).toUpperCase()}${message.slice(1)} (${example}see tl-tunnel --help)`);
  }
  const o = program.opts();
  const [sandbox, specs] = program.processedArgs as [string, string[]];
  if (o.verbose && o.quiet) throw new TunnelError(ErrorCodes.USAGE, 'Use either --verbose or --quiet, not both');
  // With --stdio, stdout carries the tunnel's bytes: JSON events there would corrupt them.
  if (o.stdio && o.json) throw new TunnelError(ErrorCodes.USAGE, 'Use either --stdio or --json, not both: with --stdio, stdout carries the data');
  return {
    kind: 'run',
    config: {
      sandbox,
      specs,
      apiKey: o.apiKey,
      pat: o.pat,
      // An empty variable means unset; an empty --proxy-url is a mistake, refused by resolveProxyTarget.
      proxyUrl: o.proxyUrl ?? (process.env.TENSORLAKE_SANDBOX_PROXY_URL || undefined),
      proxy: o.proxy,
      address: o.address,
      allowInsecure: o.allowInsecure === true,
      check: o.check,
      connectTimeoutMs: o.connectTimeout,
      keepaliveMs: o.keepalive,
      lingerMs: o.linger,
      maxConnections: o.maxConnections,
      waitMs: o.wait ?? 0,
      json: o.json === true,
      verbose: o.verbose === true,
      quiet: o.quiet === true,
      stdio: o.stdio === true,
    },
  };
}
