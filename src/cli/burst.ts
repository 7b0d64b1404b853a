/**
 * Collapses repeats of the same message: the first is shown at once, later ones within the window
 * are counted and summarised in one line when the window ends ("502 ×37 in the last 5 s").
 */
export class BurstFilter {
  private readonly windows = new Map<string, { count: number; timer: NodeJS.Timeout; label: string; startedAt: number }>();

  constructor(
    private readonly print: (line: string) => void,
    private readonly windowMs = 5000,
  ) {}

  /** Returns true when the caller should print this occurrence itself. */
  admit(key: string, label: string): boolean {
    const open = this.windows.get(key);
    if (open) {
      open.count += 1;
      return false;
    }
    const timer = setTimeout(() => this.closeWindow(key), this.windowMs).unref();
    this.windows.set(key, { count: 0, timer, label, startedAt: Date.now() });
    return true;
  }

  /** Prints the pending summaries now (at exit). */
  flush(): void {
    for (const key of [...this.windows.keys()]) this.closeWindow(key);
  }

  private closeWindow(key: string): void {
    const window = this.windows.get(key);
    if (!window) return;
    clearTimeout(window.timer);
    this.windows.delete(key);
    // At exit the window may be cut short: say how long it really was.
    const seconds = Math.max(1, Math.min(Math.ceil((Date.now() - window.startedAt) / 1000), Math.round(this.windowMs / 1000)));
    if (window.count > 0) this.print(`${window.label} ×${window.count} more in the last ${seconds} s`);
  }
}
