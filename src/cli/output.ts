import { chalkStderr, type ChalkInstance } from 'chalk';
import { type BoundAddress, type ProxyAddress, type ConnectionClose, type ConnectionInfo, type RetryInfo, type TunnelError, type TunnelStats, type TunnelWarning } from '../index.js';
import { BurstFilter } from './burst.js';
import { errorLabel, formatBytes, formatDuration, hostPort } from './format.js';
import { glyphsFor, isUnicodeSupported, type Glyphs } from './glyphs.js';
import { LiveLine, columnsOf } from './live-line.js';
import { redactFields, terminalLine } from './sanitize.js';
import { Spinner } from './spinner.js';
import { StatusLine } from './status-line.js';
import { writeTo } from './std-streams.js';

export type Verbosity = 'quiet' | 'normal' | 'verbose';

export interface OutputOptions {
  json: boolean;
  verbosity: Verbosity;
  /** stderr is an interactive terminal (spinner and status line allowed; see terminal-kind.ts). */
  tty: boolean;
  color: boolean;
  /** The live status line while forwarding (on a terminal, not with --json or --quiet). */
  status: boolean;
  /** Unicode symbols (spinner, ✔, ↑); ASCII ones otherwise. Default: what the terminal likely shows. */
  unicode?: boolean;
}

/**
 * Everything the CLI says. Human lines go to stderr; with --json, one JSON event per line goes to
 * stdout and nothing else does. Every string passes through redaction: the key never leaves here;
 * human lines pass through terminalLine(): nothing a peer sent can drive the terminal.
 */
export class Output {
  private readonly c: ChalkInstance;
  private readonly g: Glyphs;
  private readonly bursts = new BurstFilter((line) => this.human('quiet', this.c.red(line)));
  /** Warnings that come once per connection (refused, accept failed) are summarised the same way. */
  private readonly warningBursts = new BurstFilter((line) => this.human('normal', `${this.c.yellow('warning')} ${line}`));
  /** The bottom line of the terminal (spinner, status line); log lines scroll above it. */
  private readonly live: LiveLine | undefined;
  private spinner: Spinner | undefined;
  private status: StatusLine | undefined;

  constructor(readonly options: OutputOptions) {
    this.c = chalkStderr;
    if (!options.color) this.c.level = 0;
    // FORCE_COLOR=0 or false leaves chalk at 0; any other FORCE_COLOR (or NO_COLOR overruled) gets colours.
    else if (this.c.level === 0) this.c.level = 1;
    this.g = glyphsFor(options.unicode ?? isUnicodeSupported());
    if (options.tty) {
      this.live = LiveLine.of(process.stderr);
      this.live.ellipsis = this.g.ellipsis;
    }
  }

  private human(level: Verbosity, line: string): void {
    const rank = { quiet: 0, normal: 1, verbose: 2 };
    if (rank[this.options.verbosity] < rank[level]) return;
    this.print(terminalLine(line));
  }

  private print(text: string): void {
    const line = this.g.text(text);
    if (this.live) this.live.log(line);
    else writeTo(process.stderr, `${line}\n`);
  }

  event(event: string, fields: Record<string, unknown>): void {
    if (!this.options.json) return;
    writeTo(process.stdout, `${JSON.stringify({ event, time: new Date().toISOString(), ...redactFields(fields) })}\n`);
  }

  /** A spinner on a terminal, a plain line otherwise; never with --json or --quiet. */
  startSpinner(text: string): void {
    if (this.options.verbosity === 'quiet') return;
    // A terminal that reports no width gets the plain line: a spinner there would be invisible.
    if (!this.live || this.options.json || !(columnsOf(process.stderr) > 0)) {
      this.human('normal', this.c.dim(text));
      return;
    }
    this.spinner = new Spinner(this.live, this.g.text(terminalLine(text)), (line) => this.c.cyan(line.slice(0, 1)) + line.slice(1), this.g.spinner);
  }

  updateSpinner(text: string): void {
    if (this.spinner) this.spinner.text = this.g.text(terminalLine(text));
    else this.verbose(text);
  }

  endSpinner(ok: boolean, text?: string): void {
    const spinner = this.spinner;
    this.spinner = undefined;
    if (!spinner) return;
    spinner.stop();
    if (text) this.print(terminalLine(ok ? `${this.c.green(this.g.ok)} ${text}` : `${this.c.red(this.g.fail)} ${text}`));
  }

  /** The status line, while tunnels are open (on a terminal, unless --json, --quiet or --no-status). */
  startStatus(handle: ConstructorParameters<typeof StatusLine>[1]): void {
    if (!this.live || !this.options.status || this.options.json || this.options.verbosity === 'quiet') return;
    this.status = new StatusLine(this.live, handle, (line) => this.c.dim(line), this.g);
  }

  /**
   * A stop signal arrived. The status line goes; on a terminal, the "^C" it echoed at the cursor
   * is either erased with it or left on its own line, so the summary starts a line of its own.
   */
  interrupted(signal: string): void {
    const erased = this.live?.visible === true;
    this.stopStatus();
    // Any terminal echoes ^C, an interactive one or not (TERM=dumb, CI).
    if (process.stderr.isTTY === true && signal === 'SIGINT' && !erased) writeTo(process.stderr, '\n');
  }

  private stopStatus(): void {
    this.status?.stop();
    this.status = undefined;
  }

  /** Progress that matters without -v (waiting for a sandbox): the spinner's text, or a line. */
  progress(line: string): void {
    if (this.spinner) this.spinner.text = this.g.text(line);
    else this.info(line);
  }

  info(line: string): void {
    this.human('normal', line);
  }

  verbose(line: string): void {
    this.human('verbose', this.c.dim(line));
  }

  warning(warning: TunnelWarning): void {
    const label = PER_CONNECTION_WARNINGS[warning.code];
    if (label === undefined || this.warningBursts.admit(warning.code, label)) this.human('normal', `${this.c.yellow('warning')} ${warning.message}`);
    this.event('warning', { ...warning });
  }

  listening(sandbox: string, remotePort: number, addresses: BoundAddress[]): void {
    // Even with --quiet: the port picked for :REMOTE must be seen once.
    for (const a of addresses) this.human('quiet', `Forwarding ${this.c.bold(hostPort(a.address, a.port))} -> ${sandbox}:${remotePort}`);
    this.event('listening', {
      sandbox,
      remotePort,
      addresses: addresses.map((a) => ({ address: a.address, family: a.family, port: a.port })),
    });
  }

  /** Proxy mode's listener; `sandbox` is what localhost stands for. */
  proxyListening(addresses: readonly ProxyAddress[], sandbox: string | undefined): void {
    const localhost = sandbox === undefined ? '' : ` (localhost -> ${sandbox})`;
    for (const a of addresses) this.human('normal', `Proxy (SOCKS5, HTTP) on ${this.c.bold(hostPort(a.address, a.port))} -> <sandbox>:<port>${localhost}`);
    this.event('listening', {
      kind: 'proxy',
      ...(sandbox === undefined ? {} : { sandbox }),
      addresses: addresses.map((a) => ({ address: a.address, family: a.family, port: a.port })),
    });
  }

  open(sandbox: string, info: ConnectionInfo): void {
    this.verbose(`#${info.id} ${info.peer} -> ${sandbox}:${info.remotePort} open${info.warm ? ' (warm connection)' : ''}`);
    this.event('open', { id: info.id, peer: info.peer, local: info.local, sandbox, remotePort: info.remotePort, warm: info.warm === true });
  }

  retry(sandbox: string, info: ConnectionInfo & RetryInfo): void {
    this.verbose(`#${info.id} ${info.peer} -> ${sandbox}:${info.remotePort}: ${info.error.message}; retry ${info.attempt} in ${info.delayMs} ms`);
  }

  close(sandbox: string, e: ConnectionClose): void {
    const route = `${e.peer} -> ${sandbox}:${e.remotePort}`;
    if (e.error) {
      this.status?.noteError(e.error.code);
      const key = `${e.error.code}|${sandbox}|${e.remotePort}|${e.error.status ?? ''}`;
      // Errors show even with --quiet; a burst of the same one is summarised, whatever the client port.
      // Summaries speak as the lines they stand for: "port closed (502)", never a raw code.
      const label = `${errorLabel(e.error.code)}${e.error.status === undefined ? '' : ` (${e.error.status})`}`;
      if (this.bursts.admit(key, `${this.g.fail} ${sandbox}:${e.remotePort}: ${label}`)) {
        this.human('quiet', `${this.c.red(this.g.fail)} ${route}: ${e.error.message}`);
      }
      this.event('error', { ...errorFields(e.error), id: e.id, peer: e.peer, sandbox, remotePort: e.remotePort, fatal: false });
    }
    if (e.opened) {
      this.verbose(`#${e.id} ${route} closed: ${formatBytes(e.bytesSent)} sent, ${formatBytes(e.bytesReceived)} received in ${formatDuration(e.durationMs)} (${e.reason})`);
    }
    this.event('close', {
      id: e.id,
      peer: e.peer,
      local: e.local,
      sandbox,
      remotePort: e.remotePort,
      bytesSent: e.bytesSent,
      bytesReceived: e.bytesReceived,
      durationMs: e.durationMs,
      reason: e.reason,
      ...(e.error ? { code: e.error.code } : {}),
    });
  }

  fatal(error: TunnelError | Error, verboseDetail?: string): void {
    this.endSpinner(false);
    this.stopStatus();
    this.bursts.flush();
    this.warningBursts.flush();
    const tunnelError = error as Partial<TunnelError>;
    this.print(terminalLine(`${this.c.red('error')} ${error.message}`));
    const detail = verboseDetail ?? tunnelError.detail;
    if (detail && this.options.verbosity === 'verbose' && detail !== error.message) {
      // A stack trace keeps its lines; each is cleaned on its own.
      detail.split('\n').forEach((line, i) => this.verbose(`${i === 0 ? '  detail: ' : '    '}${line}`));
    }
    this.event('error', { ...errorFields(error), fatal: true });
  }

  stopped(stats: TunnelStats): void {
    this.stopStatus();
    this.bursts.flush();
    this.warningBursts.flush();
    const errors = Object.entries(stats.errors);
    const failed = errors.reduce((sum, [, n]) => sum + n, 0);
    const served = stats.connections - failed;
    const errorText = errors.length === 0 ? 'no errors' : `errors: ${errors.map(([code, n]) => `${errorLabel(code)} ×${n}`).join(', ')}`;
    const refused = stats.refused ?? 0;
    const refusedText = refused > 0 ? `, ${refused} refused (too many waiting)` : '';
    this.human('normal', `Stopped: ${served} connection${served === 1 ? '' : 's'} served${failed > 0 ? `, ${failed} failed` : ''}${refusedText}; ${formatBytes(stats.bytesSent)} sent, ${formatBytes(stats.bytesReceived)} received; ${errorText}`);
    this.event('stopped', { connections: stats.connections, failed, refused, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived, errors: stats.errors });
  }
}

/** Warnings raised once per local connection, and how their burst summary names them. */
const PER_CONNECTION_WARNINGS: Record<string, string> = {
  TL_WARN_OVERLOADED: 'refused connections (too many waiting)',
  TL_WARN_ACCEPT: 'failed accepts',
};

function errorFields(error: Error): Record<string, unknown> {
  const e = error as Partial<TunnelError>;
  return typeof e.toJSON === 'function' ? e.toJSON() : { code: 'TL_ERR_INTERNAL', message: error.message };
}
