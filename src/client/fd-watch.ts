import { readdirSync, readFileSync } from 'node:fs';

/**
 * When the process runs out of file descriptors, libuv accepts each pending connection on a
 * reserved descriptor and closes it at once: the listener never hears of it. The only way to say
 * so is to look at the descriptor table, which Linux shows in /proc (elsewhere this reports nothing).
 */
export interface FdUsage {
  open: number;
  limit: number;
}

let cachedLimit: number | undefined | null = null;

/** The soft limit (read once: a process cannot raise its own from Node); undefined where unknown. */
export function fdLimit(): number | undefined {
  if (cachedLimit !== null) return cachedLimit;
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    cachedLimit = match ? Number(match[1]) : undefined;
  } catch (err) {
    // Out of descriptors already: try again next time rather than remember "unknown".
    if (isFdExhausted(err)) return undefined;
    cachedLimit = undefined;
  }
  return cachedLimit;
}

/**
 * How many descriptors are open, and the limit. With none left, listing them fails too: that
 * failure is itself the answer (all of them).
 */
export function fdUsage(): FdUsage | undefined {
  const limit = fdLimit();
  if (limit === undefined) return undefined;
  try {
    return { open: readdirSync('/proc/self/fd').length, limit };
  } catch (err) {
    return isFdExhausted(err) ? { open: limit, limit } : undefined;
  }
}

/** Errors that mean the process (EMFILE) or the system (ENFILE) has no descriptor left. */
export function isFdExhausted(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

const CHECK_EVERY_MS = 1000;
const WARN_EVERY_MS = 10_000;
/** Descriptors that may still be free when new connections are already lost (libuv's reserve, a race). */
const MARGIN = 2;

/**
 * Watches the descriptor table while connections are open and warns, at most every 10 s, when it
 * is full: from then on new local connections are dropped before anyone sees them.
 */
export class FdWatch {
  private timer: NodeJS.Timeout | undefined;
  private lastCheck = 0;
  private lastWarning = 0;

  constructor(private readonly warn: (message: string) => void) {
    // Read while descriptors are still free.
    fdLimit();
  }

  /** Something happened that may use descriptors: look now (at most once a second). */
  poke(): void {
    if (Date.now() - this.lastCheck >= CHECK_EVERY_MS) this.check();
  }

  /** Keep looking every second while `busy` (connections are open or waiting). */
  busy(busy: boolean): void {
    if (busy && this.timer === undefined) {
      this.timer = setInterval(() => this.check(), CHECK_EVERY_MS).unref();
    } else if (!busy && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** An operation failed with EMFILE/ENFILE: warn now (rate-limited) whatever /proc says. */
  exhausted(code: string): void {
    this.report(code === 'ENFILE' ? 'The system is out of file descriptors (ENFILE)' : `Out of file descriptors (EMFILE${limitText(fdLimit())})`);
  }

  stop(): void {
    this.busy(false);
  }

  private check(): void {
    this.lastCheck = Date.now();
    const usage = fdUsage();
    if (usage && usage.open >= usage.limit - MARGIN) this.report(`Out of file descriptors (${usage.open} open${limitText(usage.limit)})`);
  }

  private report(what: string): void {
    if (Date.now() - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = Date.now();
    this.warn(`${what}: new local connections are being dropped; raise the limit (ulimit -n) or lower --max-connections`);
  }
}

function limitText(limit: number | undefined): string {
  return limit === undefined ? '' : `, ulimit -n ${limit}`;
}
