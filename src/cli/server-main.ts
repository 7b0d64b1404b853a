import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { chalkStderr } from 'chalk';
import { ErrorCodes, TunnelError, VERSION, accessDeniedReason, checkSandboxRecords, createTunnelServer, isLoopbackHost, isTunnelError, registerSecret, type SandboxRecordInput, type TunnelServerOptions } from '../index.js';
import { exitCodeFor } from './exit-codes.js';
import { untilStopSignal } from './signals.js';
import { guardStdStreams } from './std-streams.js';
import { tryHint, upgradeLine } from './server/hints.js';

function portList(text: string): number[] {
  const ports = text.split(',').map((p) => p.trim());
  if (ports.some((p) => !/^[1-9][0-9]{0,4}$/.test(p) || Number(p) > 65535)) {
    throw new InvalidArgumentError('--allow takes a comma-separated list of ports, e.g. --allow 5432,6379');
  }
  return ports.map(Number);
}

function whole(name: string, min: number) {
  return (text: string): number => {
    if (!/^[0-9]+$/.test(text) || Number(text) < min) throw new InvalidArgumentError(`${name} takes a whole number from ${min}`);
    return Number(text);
  };
}

/** Seconds, like every option of the client; the library takes milliseconds. */
function seconds(name: string, max: number) {
  return (text: string): number => {
    if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || Number(text) > max) throw new InvalidArgumentError(`${name} takes a number of seconds from 0 to ${max}, e.g. ${name} 30`);
    return Math.round(Number(text) * 1000);
  };
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TunnelError(ErrorCodes.USAGE, `Cannot read the ${what} file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function readSandboxes(path: string): SandboxRecordInput[] {
  let records: unknown;
  try {
    records = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TunnelError(ErrorCodes.USAGE, code ? `Cannot read the sandboxes file ${path} (${code})` : `The sandboxes file ${path} is not valid JSON`);
  }
  return checkSandboxRecords(records);
}

/** The option parser of tl-tunnel-server (also read by the shell completion scripts). */
export function buildServerProgram(): Command {
  return new Command()
    .name('tl-tunnel-server')
    .description('The sandbox side of the tunnel protocol, for tests and for trying tl-tunnel\noffline: relays each authenticated WebSocket to 127.0.0.1:<port> here.')
    .option('--host <addr>', 'address to listen on (127.0.0.1)')
    .option('--port <n>', 'port to listen on; 0 picks a free one (9443)', whole('--port', 0))
    .option('--token <token>', 'token clients must send (default: a new one)')
    .option('--allow <ports>', 'only these target ports, comma-separated', portList)
    .option('--cert <file>', 'PEM certificate: serve wss:// (with --key)')
    .option('--key <file>', 'PEM private key for --cert')
    .option('--max-connections <n>', 'tunnels open at once (1024)', whole('--max-connections', 1))
    .option('--idle-timeout <seconds>', 'close tunnels silent this long (0: never)', seconds('--idle-timeout', 86_400))
    .option('--sandboxes <file>', 'serve a control plane over these JSON records')
    .option('--pat <token>', 'also accept this personal access token')
    .option('--keepalive <seconds>', 'ping interval; 0 turns it off (30)', whole('--keepalive', 0))
    .option('--json', 'one JSON line when listening (url, port, token)')
    .option('-v, --verbose', 'a line per upgrade request (never the token)')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', `
The token: --token, else $TL_TUNNEL_SERVER_TOKEN, else a new one, printed.
More: docs/reference-server.md at https://github.com/tensorlakeai/tl-tunnel
`)
    .exitOverride()
    .configureOutput({ outputError: () => {} });
}

async function run(argv: string[]): Promise<number> {
  const program = buildServerProgram();
  try {
    program.parse(argv.slice(2), { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.exitCode === 0) return 0;
    throw new TunnelError(ErrorCodes.USAGE, `${err.message.replace(/^error: /, '')} (see tl-tunnel-server --help)`);
  }
  // Defaults here, not in the parser, so --help shows them in its own words.
  const o = program.opts();
  o.host ??= '127.0.0.1';
  o.port ??= 9443;
  o.maxConnections ??= 1024;
  o.idleTimeout ??= 0;
  o.keepalive ??= 30;
  if ((o.cert === undefined) !== (o.key === undefined)) throw new TunnelError(ErrorCodes.USAGE, '--cert and --key go together');
  const token: string | undefined = o.token ?? process.env.TL_TUNNEL_SERVER_TOKEN;
  registerSecret(token);
  registerSecret(o.pat);
  // A client sends the token after "Bearer ": one with a space could never match.
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new TunnelError(ErrorCodes.USAGE, `The ${o.token === undefined ? 'TL_TUNNEL_SERVER_TOKEN' : '--token'} value contains spaces, control or non-ASCII characters, which no client can send`);
  }
  const options: TunnelServerOptions = {
    host: o.host,
    port: o.port,
    token,
    allow: o.allow,
    maxConnections: o.maxConnections,
    idleTimeoutMs: o.idleTimeout,
    ...(o.sandboxes ? { sandboxes: readSandboxes(o.sandboxes) } : {}),
    ...(o.pat ? { pat: o.pat } : {}),
    keepaliveMs: o.keepalive * 1000,
    ...(o.cert ? { tls: { cert: readPem(o.cert, 'certificate'), key: readPem(o.key, 'key') } } : {}),
  };
  let server;
  try {
    server = await createTunnelServer(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EACCES' && process.platform === 'win32') {
      throw new TunnelError(ErrorCodes.LISTEN, `Cannot listen on ${o.host}:${o.port}: ${accessDeniedReason()}; try --port 0 for a free port`);
    }
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      throw new TunnelError(ErrorCodes.LISTEN, `Cannot listen on ${o.host}:${o.port} (${e.code}); try --port 0 for a free port`);
    }
    throw err;
  }
  if (token === undefined) process.stderr.write(`Generated token: ${server.token}\n`);
  if (!isLoopbackHost(server.host)) {
    process.stderr.write(`${chalkStderr.yellow('warning')} listening on ${server.host}, beyond this machine: anyone with the token reaches every port of this host\n`);
  }
  process.stderr.write(`tl-tunnel-server listening on ${server.url}\n${tryHint(server, token === undefined ? 'generated' : o.token === undefined ? 'env' : 'flag', o.sandboxes !== undefined)}\n`);
  if (o.verbose) {
    server.on('reject', (e) => process.stderr.write(`${upgradeLine(e)}\n`));
    server.on('open', (e) => process.stderr.write(`${upgradeLine({ ...e, status: 101 })}\n`));
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ event: 'listening', url: server.url, port: server.port, host: server.host, ...(token === undefined ? { token: server.token } : {}) })}\n`);
  await untilStopSignal();
  await Promise.race([server.close(), new Promise((resolve) => setTimeout(resolve, 900).unref())]);
  return 0;
}

export function serverMain(argv: string[] = process.argv): void {
  // Nobody reading our output is no reason to drop the tunnels.
  guardStdStreams();
  run(argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const error = isTunnelError(err) ? err : new TunnelError(ErrorCodes.INTERNAL, `Unexpected error: ${(err as Error)?.message ?? String(err)}`);
      process.stderr.write(`${chalkStderr.red('error')} ${error.message}\n`);
      process.exit(exitCodeFor(error.code));
    },
  );
}
