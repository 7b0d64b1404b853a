import type { TunnelHandle } from '../index.js';
import { errorLabel, formatBytes } from './format.js';
import type { LiveLine } from './live-line.js';
import { glyphsFor, type Glyphs } from './glyphs.js';

/** "A few times a second": enough to see a transfer move, calm enough not to distract. */
const INTERVAL_MS = 500;
/** Rates are averaged over this much time. */
const RATE_WINDOW_MS = 2000;

type Source = Pick<TunnelHandle, 'stats' | 'traffic'>;

interface Sample {
  at: number;
  sent: number;
  received: number;
}

/**
 * The live status line under the log lines: open tunnels, connections served, bytes each way with
 * their current rate, and the last error.
 */
export class StatusLine {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  private lastError: { code: string; at: number } | undefined;

  constructor(
    private readonly line: LiveLine,
    private readonly source: Source,
    private readonly style: (text: string) => string,
    private readonly g: Pick<Glyphs, 'up' | 'down' | 'separator'> = glyphsFor(true),
  ) {
    this.draw();
    // Never the reason the process stays alive.
    this.timer = setInterval(() => this.draw(), INTERVAL_MS).unref();
  }

  noteError(code: string): void {
    this.lastError = { code, at: Date.now() };
  }

  stop(): void {
    clearInterval(this.timer);
    this.line.hide();
  }

  private draw(): void {
    this.line.show(this.text(Date.now()), this.style);
  }

  text(now: number): string {
    const { stats } = this.source;
    const { bytesSent, bytesReceived } = this.source.traffic();
    this.samples.push({ at: now, sent: bytesSent, received: bytesReceived });
    while (this.samples.length > 2 && now - (this.samples[1] as Sample).at >= RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0] as Sample;
    const seconds = (now - first.at) / 1000;
    const rate = (bytes: number): string => `${formatBytes(seconds > 0 ? Math.round(bytes / seconds) : 0)}/s`;
    const failed = Object.values(stats.errors).reduce((sum, n) => sum + n, 0);
    // A tunnel whose client has left is closing, not open, while it delivers the last bytes.
    const parts = [`${stats.active - stats.lingering} open`];
    if (stats.waiting > 0) parts.push(`${stats.waiting} waiting`);
    parts.push(`${stats.connections - failed} served`);
    if (failed > 0) parts.push(`${failed} failed`);
    parts.push(`${this.g.up} ${formatBytes(bytesSent)} ${rate(bytesSent - first.sent)}`, `${this.g.down} ${formatBytes(bytesReceived)} ${rate(bytesReceived - first.received)}`);
    if (this.lastError) parts.push(`last error: ${errorLabel(this.lastError.code)}, ${ago(now - this.lastError.at)}`);
    return parts.join(this.g.separator);
  }
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s ago` : `${Math.floor(s / 60)} min ago`;
}
