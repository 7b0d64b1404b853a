import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ErrorCodes, TunnelError, VERSION, quoteInput } from '../index.js';

export interface CliConfig {
  /** Absent only in proxy mode (-D) without a sandbox argument. */
  sandbox?: string;
  specs: string[];
  apiKey?: string;
  pat?: string;
  apiUrl?: string;
  organizationId?: string;
  projectId?: string;
  /** TENSORLAKE_SANDBOX_API_URL: the lookup base. */
  sandboxApiUrl?: string;
  resume: boolean;
  proxyUrl?: string;
  /** TENSORLAKE_SANDBOX_PROXY_URL: the proxy base when the sandbox record has none (and in local development). */
  fallbackProxyUrl?: string;
  /** --namespace / INDEXIFY_NAMESPACE: local development's lifecycle namespace. */
  namespace?: string;
  proxy?: string;
  address?: string;
  allowInsecure: boolean;
  check: boolean;
  prewarm: boolean;
  connectTimeoutMs: number;
  keepaliveMs: number;
  lingerMs: number;
  maxConnections: number;
  waitMs: number;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  stdio: boolean;
  /** -D / --proxy-port: where the SOCKS/HTTP proxy listens. */
  proxyListen?: { address?: string; port: number };
  /** The live status line on a terminal (--no-status turns it off). */
  status: boolean;
  /** -d / --detach: run in the background once listening. */
  detach: boolean;
}

/** What parsing ended in: a config to run, or help/version already printed. */
export type ParseResult = { kind: 'run'; config: CliConfig } | { kind: 'done' };

const DEFAULT_WAIT_SECONDS = 120;
/** --help fits an 80-column terminal, however wide the one it is shown in. */
const HELP_WIDTH = 80;

const EXAMPLES = `
Port specs: 5432, 15432:5432, :5432 (a free local port), 127.0.0.1:15432:5432;
  ssh's 5432:localhost:5432 means 5432:5432

Examples:
  $ tl-tunnel sbx-123 5432          # then: psql -h localhost -U postgres
  $ tl-tunnel sbx-123 :6379 5900    # several ports; :6379 picks a free one
  ~/.ssh/config (Host sbx-*): ProxyCommand tl-tunnel --stdio %h 22

Scripts (bash): in the background, stopped whatever happens
  $ out=$(tl-tunnel --detach --json sbx-123 :5432)
  $ trap 'tl-tunnel stop sbx-123' EXIT
  $ port=$(jq -r 'select(.event=="listening") | .addresses[0].port' <<<"$out")
  $ psql -h localhost -p "$port" -U postgres -c 'select 1'

Exit codes: 0 ok (Ctrl-C too), 1 error, 2 usage, 3 auth, 4 sandbox or port,
  5 local port, 6 network, 7 no such tunnel, 130 interrupted. More: README.md
  and docs/ at https://github.com/tensorlakeai/tl-tunnel#readme
`;

const USAGE = `[options] <sandbox> <port-spec...>
       tl-tunnel [options] -D [address:]port [sandbox] [port-spec...]
       tl-tunnel [options] --stdio <sandbox> <port>
       tl-tunnel ps | stop <tunnel> | logs [-f] <tunnel>
       tl-tunnel completion bash|zsh|fish|powershell
       tl-tunnel help [command]`;

/** -L may be given several times; each adds a port spec. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** -D's value: PORT or ADDRESS:PORT ([::1]:PORT for IPv6); 0 picks a free port. */
function proxyListen(text: string): { address?: string; port: number } {
  const match = /^(?:(\[[^\]]*\]|[^:\[\]]*):)?([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    throw new InvalidArgumentError(`-D, --proxy-port takes [ADDRESS:]PORT, e.g. -D 1080 or -D 127.0.0.1:1080, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  const address = match[1]?.replace(/^\[(.*)\]$/, '$1');
  return address === undefined ? { port } : { address, port };
}

/**
 * A number of seconds for `name`, checked here so that a bad value is refused before anything is
 * printed, naming the flag and its unit. Values are kept in whole milliseconds: one that rounds to
 * 0 ms would silently mean "off" (or "no time"), so only an exact 0 may, where 0 is allowed.
 */
function seconds(name: string, { zero, max }: { zero: boolean; max: number }) {
  return (text: string): number => {
    const range = `${zero ? '0 or ' : ''}from 0.001 to ${max}`;
    if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) {
      throw new InvalidArgumentError(`${name} takes a number of seconds (${range}), e.g. ${name} 10; got ${quoteInput(text, 20)}`);
    }
    const value = Number(text);
    const ms = Math.round(value * 1000);
    if (value === 0 && zero) return 0;
    if (ms < 1 || value > max) {
      throw new InvalidArgumentError(`${name} ${text} is out of range: give ${range} seconds${zero ? ` (0 turns it off)` : ''}`);
    }
    return ms;
  };
}

function count(name: string, max: number) {
  return (text: string): number => {
    if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > max) {
      throw new InvalidArgumentError(`${name} takes a whole number from 1 to ${max}, e.g. ${name} 256; got ${quoteInput(text, 20)}`);
    }
    return Number(text);
  };
}

/** Options that take a value in the next argument (so that value is not a positional). */
const VALUE_OPTIONS = new Set(['--api-key', '--pat', '--proxy-url', '--proxy', '--address', '--connect-timeout', '--keepalive', '--linger', '--max-connections', '--organization', '--project', '--api-url', '--namespace', '-D', '--proxy-port', '-L', '--local']);

/**
 * `--wait` takes an optional number of seconds. A bare `--wait` must not swallow the argument after
 * it: `--wait 30 sbx 5432` waits 30 s, but in `sbx --wait 5432` the 5432 is the port spec. So the
 * next argument is the wait only if it is a number and the sandbox and a port spec remain without it.
 * `--wait=SECONDS` is never ambiguous.
 */
function normaliseArgv(args: string[]): string[] {
  const positionals = (skip: number): number => {
    let n = 0;
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i] as string;
      if (arg === '--') return n + args.length - i - 1 - (skip > i ? 1 : 0);
      if (i === skip) continue;
      if (VALUE_OPTIONS.has(arg)) i += 1;
      else if (!arg.startsWith('-') || arg === '-') n += 1;
    }
    return n;
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (VALUE_OPTIONS.has(arg)) {
      out.push(arg, ...args.slice(i + 1, i + 2));
      i += 1;
      continue;
    }
    if (arg !== '--wait') {
      out.push(arg);
      continue;
    }
    const next = args[i + 1] ?? '';
    if (/^[0-9]+(\.[0-9]+)?$/.test(next) && positionals(i + 1) >= 2) {
      out.push(`--wait=${next}`);
      i += 1;
    } else {
      out.push(`--wait=${DEFAULT_WAIT_SECONDS}`);
    }
  }
  return out;
}

export function buildProgram(): Command {
  return new Command()
    .name('tl-tunnel')
    .description('Forward local TCP ports into a Tensorlake sandbox.')
    .usage(USAGE)
    .argument('[sandbox]')
    .argument('[port-spec...]')
    .option('--api-key <key>', 'API key (default: $TENSORLAKE_API_KEY, config)')
    .option('--pat <token>', "personal access token (default: tl login's)")
    .option('--organization <id>', 'organization, for a personal access token')
    .option('--project <id>', 'project, for a personal access token')
    .option('--api-url <url>', 'Tensorlake API (default: api.tensorlake.ai)')
    .option('--resume', 'resume a suspended sandbox, then wait for it')
    .option('--proxy-url <url>', 'the sandbox proxy to use (skips the lookup)')
    .option('--namespace <name>', 'namespace of --resume in local development')
    .option('--proxy <url>', 'HTTP CONNECT proxy (default: $HTTPS_PROXY)')
    .option('--address <addr>', 'bind address (default: 127.0.0.1 and ::1)')
    .option('--allow-insecure', 'allow ws:// to a proxy on another machine')
    .option('--no-check', 'skip the start-up check of sandbox and ports')
    .option('--no-prewarm', 'open no connections ahead of need')
    .addOption(new Option('--connect-timeout <seconds>', 'to open each tunnel, retries included (10)').argParser(seconds('--connect-timeout', { zero: false, max: 3600 })))
    .addOption(new Option('--keepalive <seconds>', 'ping interval; 0 turns it off (15)').argParser(seconds('--keepalive', { zero: true, max: 3600 })))
    .addOption(new Option('--linger <seconds>', "deliver this long after the client's FIN (2)").argParser(seconds('--linger', { zero: true, max: 3600 })))
    .addOption(new Option('--max-connections <n>', 'tunnels open at once; more wait (1024)').argParser(count('--max-connections', 1_000_000)))
    .addOption(new Option('--wait [seconds]', `wait for the port to listen (bare: ${DEFAULT_WAIT_SECONDS} s)`).argParser(seconds('--wait', { zero: false, max: 86_400 })))
    .addOption(new Option('-D, --proxy-port <port>', '[ADDR:]PORT: SOCKS5/HTTP proxy to any sandbox').argParser(proxyListen))
    .addOption(new Option('-L, --local <spec>', 'ssh-style spec, e.g. 5432:localhost:5432').argParser(collect))
    .option('--stdio', 'relay stdin/stdout (ssh ProxyCommand)')
    .option('-d, --detach', 'run in the background (see ps, stop, logs)')
    .option('--json', 'one JSON event per line on stdout')
    .option('-v, --verbose', 'a line per connection, retries and details')
    .option('-q, --quiet', 'only errors and the Forwarding lines')
    .option('--no-status', 'no live status line on the terminal')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', EXAMPLES)
    .configureHelp({ helpWidth: Math.min(process.stdout.columns || HELP_WIDTH, HELP_WIDTH) })
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
    // Commander quotes what was typed; a pasted 100 KB argument is shown cut to 60 characters.
    const message = err.message
      .replace(/^error: /, '')
      .replace(/\n[\s\S]*/, '')
      .replace(/'([^']{61,})'/g, (_m, text: string) => `'${text.slice(0, 60)}…'`)
      // Our own value checks name the flag, its unit and the value: commander's preamble repeats them.
      .replace(/^option '[^']*' argument '[^']*' is invalid\. /i, '');
    // Argument-shape errors get an example of the right form; option errors carry their own.
    const example = /missingArgument|excessArguments|unknownOption/.test(err.code) ? 'e.g. tl-tunnel sbx-123 5432; ' : '';
    throw new TunnelError(ErrorCodes.USAGE, `${message.charAt(0).toUpperCase()}${message.slice(1)} (${example}see tl-tunnel --help)`);
  }
  const o = program.opts();
  const [sandbox, positional] = program.processedArgs as [string | undefined, string[]];
  const specs = [...positional, ...((o.local as string[] | undefined) ?? [])];
  // The positional arguments are optional only in proxy mode; commander's own wording otherwise.
  if (o.proxyPort === undefined) {
    const missing = sandbox === undefined ? 'sandbox' : specs.length === 0 ? 'port-spec' : undefined;
    if (missing) throw new TunnelError(ErrorCodes.USAGE, `Missing required argument '${missing}' (e.g. tl-tunnel sbx-123 5432, or tl-tunnel -D 1080 for proxy mode; see tl-tunnel --help)`);
  } else if (o.stdio) {
    throw new TunnelError(ErrorCodes.USAGE, 'Use either --stdio or -D/--proxy-port, not both');
  }
  if (o.detach && o.stdio) throw new TunnelError(ErrorCodes.USAGE, 'Use either --stdio or --detach, not both: --stdio relays this process\'s own stdin and stdout');
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
      apiUrl: o.apiUrl,
      organizationId: o.organization,
      projectId: o.project,
      sandboxApiUrl: process.env.TENSORLAKE_SANDBOX_API_URL?.trim() || undefined,
      resume: o.resume === true,
      // As upstream, the variable never switches the lookup off: it is only the fallback when the
      // record has no sandbox_url. An empty variable means unset; an empty --proxy-url is a mistake,
      // refused by resolveProxyTarget.
      proxyUrl: o.proxyUrl,
      fallbackProxyUrl: process.env.TENSORLAKE_SANDBOX_PROXY_URL?.trim() || undefined,
      namespace: o.namespace ?? (process.env.INDEXIFY_NAMESPACE?.trim() || undefined),
      proxy: o.proxy,
      address: o.address,
      allowInsecure: o.allowInsecure === true,
      check: o.check,
      prewarm: o.prewarm,
      connectTimeoutMs: o.connectTimeout ?? 10_000,
      keepaliveMs: o.keepalive ?? 15_000,
      lingerMs: o.linger ?? 2_000,
      maxConnections: o.maxConnections ?? 1024,
      waitMs: o.wait ?? 0,
      json: o.json === true,
      verbose: o.verbose === true,
      quiet: o.quiet === true,
      stdio: o.stdio === true,
      ...(o.proxyPort === undefined ? {} : { proxyListen: o.proxyPort as { address?: string; port: number } }),
      status: o.status !== false,
      detach: o.detach === true,
    },
  };
}
