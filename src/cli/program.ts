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
Examples:
  # PostgreSQL: psql on localhost:5432 reaches port 5432 in the sandbox
  $ tl-tunnel sbx-123 5432
  $ psql -h localhost -p 5432 -U postgres

  # Redis on a free local port (printed), waiting for the server to start
  $ tl-tunnel --wait sbx-123 :6379
  $ redis-cli -p <printed port> PING

  # Chrome DevTools of a browser started with --remote-debugging-port=9222
  # (then open chrome://inspect and add localhost:9222)
  $ tl-tunnel sbx-123 9222

  # VNC and several ports at once
  $ tl-tunnel sbx-123 5900 15432:5432

  # SSH to an sshd you run in the sandbox (Tensorlake sandboxes also have
  # native SSH: tl sbx ssh keys add). In ~/.ssh/config, then: ssh root@sbx-123
  Host sbx-*
    ProxyCommand tl-tunnel --stdio %h 22

  # Proxy mode: one local port (SOCKS5 and HTTP proxy) for every port of
  # every sandbox
  $ tl-tunnel -D 1080
  $ curl --socks5-hostname localhost:1080 http://my-app:3000/
  $ curl -x http://localhost:1080 http://my-app:3000/
  $ tl-tunnel -D 1080 my-app 5432   # localhost means my-app; also forward 5432

  # Scripts (bash): start in the background, read the port picked for
  # :5432, stop it when done (nothing is left running)
  $ out=$(tl-tunnel --detach --json sbx-123 :5432)
  $ port=$(jq -r 'select(.event=="listening") | .addresses[0].port' <<<"$out")
  $ psql -h localhost -p "$port" -U postgres -c 'select 1'
  $ tl-tunnel stop sbx-123
  $ tl-tunnel ps                    # running tunnels; tl-tunnel logs <id>

Proxy destinations: <sandbox>, <sandbox>.sandbox or <sandbox>.localhost, and
  the port inside it; localhost / 127.0.0.1 / ::1 = the sandbox argument;
  anything else is refused
Port specs: REMOTE, LOCAL:REMOTE, :REMOTE (free local port),
  ADDRESS:LOCAL:REMOTE, [::1]:LOCAL:REMOTE
Credentials, as tl finds them: flags, then TENSORLAKE_* variables, then
  .tensorlake/config.toml (searched upward from here), then
  ~/.config/tensorlake/.tensorlake_config, then tl login's credentials.toml.
  An API key from anywhere beats a personal access token.
Environment: TENSORLAKE_API_KEY, TENSORLAKE_PAT, TENSORLAKE_ORGANIZATION_ID,
  TENSORLAKE_PROJECT_ID, TENSORLAKE_API_URL, TENSORLAKE_SANDBOX_API_URL,
  TENSORLAKE_SANDBOX_PROXY_URL, HTTPS_PROXY, HTTP_PROXY, NO_PROXY, NO_COLOR,
  NODE_EXTRA_CA_CERTS
Stopping: Ctrl-C, SIGTERM, SIGHUP or SIGUSR2 closes the tunnels, prints a
  summary and exits 0; a second one exits at once (130). Ctrl-C before the
  tunnel is open exits 130.
Shell completion: tl-tunnel completion bash|zsh|fish|powershell (see the README)
Exit codes: 0 ok, 1 other error, 2 usage / no credentials, 3 auth, 4 no such
  sandbox / sandbox not running / port never opened, 5 local port unavailable,
  6 proxy or API unreachable / TLS / timeout, 130 interrupted
`;

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
const VALUE_OPTIONS = new Set(['--api-key', '--pat', '--proxy-url', '--proxy', '--address', '--connect-timeout', '--keepalive', '--linger', '--max-connections', '--organization', '--project', '--api-url', '-D', '--proxy-port']);

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
    .usage('[options] <sandbox> <port-spec...>\n       tl-tunnel [options] -D [address:]port [sandbox] [port-spec...]')
    .argument('[sandbox]', 'sandbox id or name (optional with -D: the sandbox localhost stands for)')
    .argument('[port-spec...]', 'REMOTE | LOCAL:REMOTE | :REMOTE | ADDRESS:LOCAL:REMOTE')
    .option('--api-key <key>', 'API key (default: $TENSORLAKE_API_KEY, then apikey in the config files)')
    .option('--pat <token>', 'personal access token (default: $TENSORLAKE_PAT, then the tl login file)')
    .option('--organization <id>', 'organization id for a personal access token (default: $TENSORLAKE_ORGANIZATION_ID, tl login, config)')
    .option('--project <id>', 'project id for a personal access token (default: $TENSORLAKE_PROJECT_ID, tl login, config)')
    .option('--api-url <url>', 'Tensorlake API URL; the sandbox is looked up at api.X -> sandbox.X (default: $TENSORLAKE_API_URL, config, https://api.tensorlake.ai)')
    .option('--resume', 'resume the sandbox if it is suspended (at start and while running), then wait for it')
    .option('--proxy-url <url>', "talk to this sandbox proxy directly, without a lookup (default: the sandbox record's sandbox_url, else $TENSORLAKE_SANDBOX_PROXY_URL)")
    .option('--namespace <name>', 'local development (a localhost API URL): the namespace of --resume (default: $INDEXIFY_NAMESPACE, then "default")')
    .option('--proxy <url>', 'HTTP CONNECT proxy (default: $HTTPS_PROXY / $HTTP_PROXY, honouring $NO_PROXY)')
    .option('--address <addr>', 'bind address for specs (and -D) without one (default: 127.0.0.1 and ::1)')
    .option('--allow-insecure', 'allow http:// or ws:// to a proxy that is not on this machine')
    .option('--no-check', 'skip the startup check of the sandbox and ports')
    .option('--no-prewarm', 'do not keep up to 4 connections to the proxy open ahead of need (drained after 60 s without a new connection)')
    .addOption(new Option('--connect-timeout <seconds>', 'time allowed to open each tunnel, retries included').default(10_000, '10').argParser(seconds('--connect-timeout', { zero: false, max: 3600 })))
    .addOption(new Option('--keepalive <seconds>', 'ping interval; 0 turns keepalive off').default(15_000, '15').argParser(seconds('--keepalive', { zero: true, max: 3600 })))
    .addOption(new Option('--linger <seconds>', 'after the local client half-closes, keep delivering until idle this long').default(2_000, '2').argParser(seconds('--linger', { zero: true, max: 3600 })))
    .addOption(new Option('--max-connections <n>', 'open tunnels at once; more wait').default(1024).argParser(count('--max-connections', 1_000_000)))
    .addOption(new Option('--wait [seconds]', `retry while nothing listens on the port yet (bare: ${DEFAULT_WAIT_SECONDS} s; --wait=SECONDS is never ambiguous); also bounds the wait for a pending sandbox (default 120 s)`).argParser(seconds('--wait', { zero: false, max: 86_400 })))
    .addOption(new Option('-D, --proxy-port <[address:]port>', 'also listen on one port that speaks SOCKS5 and HTTP proxying into any sandbox (loopback unless an address is given)').argParser(proxyListen))
    .option('--stdio', 'relay stdin/stdout over one tunnel (SSH ProxyCommand); takes one remote port')
    .option('-d, --detach', 'run in the background once listening; print its id (see tl-tunnel ps, stop, logs)')
    .option('--json', 'one JSON event per line on stdout')
    .option('-v, --verbose', 'one line per connection, retries and details')
    .option('-q, --quiet', 'errors and the Forwarding lines only')
    .option('--no-status', 'no live status line at the bottom of the terminal')
    .version(VERSION, '-V, --version')
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
  const [sandbox, specs] = program.processedArgs as [string | undefined, string[]];
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
      connectTimeoutMs: o.connectTimeout,
      keepaliveMs: o.keepalive,
      lingerMs: o.linger,
      maxConnections: o.maxConnections,
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
