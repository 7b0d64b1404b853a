import { LiveLine } from './live-line.js';

const INTERVAL_MS = 80;

/**
 * A spinner drawn on a LiveLine. It never touches stdin (so Ctrl-C, Ctrl-Z and Ctrl-\ keep
 * reaching the process as signals) and never loops over the terminal's width.
 */
export class Spinner {
  private frame = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly line: LiveLine,
    private label: string,
    private readonly style: (text: string) => string,
    /** Braille dots, or ASCII where the terminal likely lacks them (glyphs.ts). */
    private readonly frames: readonly string[],
  ) {
    this.draw();
    // The startup check keeps the process alive while it matters; the spinner alone must not.
    this.timer = setInterval(() => this.draw(), INTERVAL_MS).unref();
  }

  set text(text: string) {
    this.label = text;
    this.draw();
  }

  /** Removes the spinner; the caller prints the outcome. */
  stop(): void {
    clearInterval(this.timer);
    this.line.hide();
  }

  private draw(): void {
    this.frame = (this.frame + 1) % this.frames.length;
    this.line.show(`${this.frames[this.frame]} ${this.label}`, this.style);
  }
}
