import { isOpen, writeTo } from './std-streams.js';

/** Columns kept free at the end: the cursor never reaches the last column, and the "^C" a
 * terminal echoes on Ctrl-C still fits on the line (so erasing the line erases it too). */
const SPARE_COLUMNS = 3;
/**
 * Narrower than this, no line is drawn (as at 0 columns): a few characters and an ellipsis tell
 * nothing, and every wrapped log line above would leave copies of them in the scrollback.
 */
const MIN_COLUMNS = 12;

/**
 * The one line at the bottom of a terminal that is redrawn in place (spinner, status line), with
 * log lines printed above it. Each change is one write ("erase, log line, redraw"), so nothing
 * flickers, and nothing here loops over the terminal's width: a terminal of 0 columns simply gets
 * no line. The cursor stays at the end of the drawn text.
 */
export class LiveLine {
  private text: string | undefined;
  /** What marks a line cut to the width: "…", or "..." on a terminal without Unicode. */
  ellipsis = '…';
  private style: (text: string) => string = (text) => text;
  /** Characters on screen now (0: nothing drawn). */
  private drawn = 0;
  private readonly onResize = (): void => this.redraw();

  private constructor(private readonly stream: NodeJS.WriteStream) {
    // Node writes to a terminal synchronously, so a terminal that takes no output (Ctrl-S, a
    // stopped tmux pane) would freeze every tunnel at the next redraw. libuv opened its own file
    // description of the terminal, so making it non-blocking affects no other process.
    setBlocking(stream, false);
    // Whatever ends the process (a second Ctrl-C exits at once), the shell's prompt must not land
    // on the end of a status line.
    process.on('exit', () => {
      setBlocking(stream, true);
      this.hide();
    });
    // Ctrl-Z: the shell prints its job line below ours; a line left drawn would stay in the
    // scrollback, and the redraw after `fg` would add another. Erase, stop, redraw on return.
    // Listening for SIGTSTP replaces the default stop, so the process stops itself (SIGSTOP).
    if (process.platform !== 'win32') {
      process.on('SIGTSTP', () => {
        setBlocking(stream, true);
        if (this.drawn > 0) this.write(this.erase());
        process.kill(process.pid, 'SIGSTOP');
      });
      process.on('SIGCONT', () => {
        setBlocking(stream, false);
        this.redraw();
      });
    }
  }

  private static readonly lines = new Map<NodeJS.WriteStream, LiveLine>();

  /** One per stream, shared by every writer (a crash report must erase the status line too). */
  static of(stream: NodeJS.WriteStream): LiveLine {
    let line = LiveLine.lines.get(stream);
    if (!line) LiveLine.lines.set(stream, (line = new LiveLine(stream)));
    return line;
  }

  /** Whether something is drawn now. */
  get visible(): boolean {
    return this.drawn > 0;
  }

  /** Shows `text` (plain: no escape codes; it is cut to the terminal's width, then styled). */
  show(text: string, style: (text: string) => string = (t) => t): void {
    if (text === this.text && this.drawn > 0) return;
    if (this.text === undefined) this.stream.on('resize', this.onResize);
    this.text = text;
    this.style = style;
    this.redraw();
  }

  /** Removes the line; log lines then go out as they are. */
  hide(): void {
    if (this.text === undefined) return;
    this.text = undefined;
    this.stream.off('resize', this.onResize);
    this.write(this.erase());
  }

  /** Prints `line` above the live line. */
  log(line: string): void {
    this.write(`${this.erase()}${line}\n${this.render()}`);
  }

  private redraw(): void {
    // While the terminal is not taking output, redraws would only pile up: skip them.
    if (this.stream.writableLength > 0) return;
    this.write(this.erase() + this.render());
  }

  private write(text: string): void {
    if (text !== '') writeTo(this.stream, text);
  }

  private erase(): string {
    if (this.drawn === 0) return '';
    // After the window was narrowed, a terminal that re-wraps lines (most do) shows the old line
    // over several rows, the cursor on the last: go up to the first before erasing.
    const columns = columnsOf(this.stream);
    const rows = columns > 0 ? Math.ceil(this.drawn / columns) : 1;
    this.drawn = 0;
    return `\r${rows > 1 ? `\x1b[${rows - 1}A` : ''}\x1b[J`;
  }

  private render(): string {
    const columns = columnsOf(this.stream);
    const width = columns - SPARE_COLUMNS;
    if (this.text === undefined || columns < MIN_COLUMNS || !isOpen(this.stream)) return '';
    const chars = [...this.text];
    const cut = Math.max(0, width - this.ellipsis.length);
    const shown = chars.length > width ? `${chars.slice(0, cut).join('')}${this.ellipsis}`.slice(0, width) : this.text;
    this.drawn = Math.min(chars.length, width);
    return this.style(shown);
  }
}

/**
 * The terminal's width now. `columns` is only refreshed when Node sees SIGWINCH, which Windows
 * consoles emulate only while the console is read: ask the terminal itself on each redraw.
 */
export function columnsOf(stream: NodeJS.WriteStream): number {
  const handle = (stream as unknown as { _handle?: { getWindowSize?: (size: number[]) => number } })._handle;
  const size: number[] = [];
  if (typeof handle?.getWindowSize === 'function' && handle.getWindowSize(size) === 0 && (size[0] ?? 0) > 0) return size[0] as number;
  return stream.columns ?? 0;
}

function setBlocking(stream: NodeJS.WriteStream, blocking: boolean): void {
  if (process.platform === 'win32') return;
  const handle = (stream as unknown as { _handle?: { setBlocking?: (on: boolean) => void } })._handle;
  handle?.setBlocking?.(blocking);
}
