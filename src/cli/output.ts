import { chalkStderr, type ChalkInstance } from 'chalk';
import { type BoundAddress, type ConnectionClose, type ConnectionInfo, type RetryInfo, type TunnelError, type TunnelStats, type TunnelWarning } from '../index.js';
import { BurstFilter } from './burst.js';
import { formatBytes, formatDuration, hostPort } from './format.js';
import { redactFields, terminalLine } from './sanitize.js';

export type Verbosity = 'quiet' | 'normal' | 'verbose';

export interface OutputOptions {
  json: boolean;
  verbosity: Verbosity;
  /** stderr is a terminal (spinner and colours allowed). */
  tty: boolean;
  color: boolean;
}

interface Spinner {
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
  text: string;
}

/**
 * Everything the CLI says. Human lines go to stderr; with --json, one JSON event per line goes to
 * stdout and nothing else does. Every string passes through redaction: the key never leaves here;
 * human lines pass through terminalLine(): nothing a peer sent can drive the terminal.
 */
export class Output {
  private readonly c: ChalkInstance;
  private readonly bursts = new BurstFilter((line) => this.human('quiet', this.c.red(line)));
  private spinner: Spinner | undefined;
  private stdoutGone = false;

  constructor(readonly options: OutputOptions) {
    this.c = chalkStderr;
    if (!options.color) this.c.level = 0;
    // A script may stop reading once it has the port (`| head -1`): keep forwarding, stop writing.
    if (options.json) process.stdout.on('error', () => void (this.stdoutGone = true));
  }

  private human(level: Verbosity, line: string): void {
    const rank = { quiet: 0, normal: 1, verbose: 2 };
    if (rank[this.options.verbosity] < rank[level]) return;
    if (this.spinner) this.spinner.stop();
    process.stderr.write(`${terminalLine(line)}\n`);
  }

  event(event: string, fields: Record<string, unknown>): void {
    if (!this.options.json || this.stdoutGone) return;
    process.stdout.write(`${JSON.stringify({ event, time: new Date().toISOString(), ...redactFields(fields) })}\n`);
  }

  /** A spinner on a terminal, a plain line otherwise; never with --json or --quiet. */
  async startSpinner(text: string): Promise<void> {
    if (this.options.verbosity === 'quiet') return;
    // A terminal that reports no width (some ptys) would send ora's line clearing into a loop.
    if (!this.options.tty || this.options.json || !((process.stderr.columns ?? 0) > 0)) {
      this.human('normal', this.c.dim(text));
      return;
    }
    const { default: ora } = await import('ora');
    this.spinner = ora({ text, stream: process.stderr, isEnabled: true, color: 'cyan' }).start();
  }

  updateSpinner(text: string): void {
    if (this.spinner) this.spinner.text = terminalLine(text);
    else this.verbose(text);
  }

  endSpinner(ok: boolean, text?: string): void {
    const spinner = this.spinner;
    this.spinner = undefined;
    if (!spinner) return;
    if (ok) spinner.succeed(text);
    else if (text) spinner.fail(text);
    else spinner.stop();
  }

  info(line: string): void {
    this.human('normal', line);
  }

  verbose(line: string): void {
    this.human('verbose', this.c.dim(line));
  }

  warning(warning: TunnelWarning): void {
    this.human('normal', `${this.c.yellow('warning')} ${warning.message}`);
    this.event('warning', { ...warning });
  }

  listening(sandbox: string, remotePort: number, addresses: BoundAddress[]): void {
    for (const a of addresses) this.human('normal', `Forwarding ${this.c.bold(hostPort(a.address, a.port))} -> ${sandbox}:${remotePort}`);
    this.event('listening', {
      sandbox,
      remotePort,
      addresses: addresses.map((a) => ({ address: a.address, family: a.family, port: a.port })),
    });
  }

  open(sandbox: string, info: ConnectionInfo): void {
    this.verbose(`#${info.id} ${info.peer} -> ${sandbox}:${info.remotePort} open`);
    this.event('open', { id: info.id, peer: info.peer, local: info.local, sandbox, remotePort: info.remotePort });
  }

  retry(sandbox: string, info: ConnectionInfo & RetryInfo): void {
    this.verbose(`#${info.id} ${info.peer} -> ${sandbox}:${info.remotePort}: ${info.error.message}; retry ${info.attempt} in ${info.delayMs} ms`);
  }

  close(sandbox: string, e: ConnectionClose): void {
    const route = `${e.peer} -> ${sandbox}:${e.remotePort}`;
    if (e.error) {
      const key = `${e.error.code}|${e.remotePort}|${e.error.status ?? ''}`;
      // Errors show even with --quiet; a burst of the same one is summarised, whatever the client port.
      if (this.bursts.admit(key, `✖ ${sandbox}:${e.remotePort}: ${e.error.status ?? e.error.code}`)) {
        this.human('quiet', `${this.c.red('✖')} ${route}: ${e.error.message}`);
      }
      this.event('error', { ...errorFields(e.error), id: e.id, peer: e.peer, remotePort: e.remotePort, fatal: false });
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
    this.bursts.flush();
    const tunnelError = error as Partial<TunnelError>;
    process.stderr.write(`${terminalLine(`${this.c.red('error')} ${error.message}`)}\n`);
    const detail = verboseDetail ?? tunnelError.detail;
    if (detail && this.options.verbosity === 'verbose' && detail !== error.message) {
      // A stack trace keeps its lines; each is cleaned on its own.
      detail.split('\n').forEach((line, i) => this.verbose(`${i === 0 ? '  detail: ' : '    '}${line}`));
    }
    this.event('error', { ...errorFields(error), fatal: true });
  }

  stopped(stats: TunnelStats): void {
    this.bursts.flush();
    const errors = Object.entries(stats.errors);
    const failed = errors.reduce((sum, [, n]) => sum + n, 0);
    const served = stats.connections - failed;
    const errorText = errors.length === 0 ? 'no errors' : `errors: ${errors.map(([code, n]) => `${code.replace('TL_ERR_', '').toLowerCase().replace(/_/g, ' ')} ×${n}`).join(', ')}`;
    const refused = stats.refused ?? 0;
    const refusedText = refused > 0 ? `, ${refused} refused (too many waiting)` : '';
    this.human('normal', `Stopped: ${served} connection${served === 1 ? '' : 's'} served${failed > 0 ? `, ${failed} failed` : ''}${refusedText}; ${formatBytes(stats.bytesSent)} sent, ${formatBytes(stats.bytesReceived)} received; ${errorText}`);
    this.event('stopped', { connections: stats.connections, failed, refused, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived, errors: stats.errors });
  }
}

function errorFields(error: Error): Record<string, unknown> {
  const e = error as Partial<TunnelError>;
  return typeof e.toJSON === 'function' ? e.toJSON() : { code: 'TL_ERR_INTERNAL', message: error.message };
}
