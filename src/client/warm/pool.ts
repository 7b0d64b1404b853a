import type { Socket } from 'node:net';

export interface WarmSettings {
  /** Most warm sockets held at once. */
  max: number;
  /** After this long without a new connection the pool drains and opens nothing more. */
  idleMs: number;
}

/** Opens one connection to the proxy; resolves once it could carry the upgrade (TCP, TLS, CONNECT done). */
export type Opener = () => Promise<Socket>;

interface Entry {
  born: number;
  /** Retires the socket at MAX_WARM_AGE_MS. */
  retire?: NodeJS.Timeout;
  /** Set once the connection is ready; until then the entry is still opening. */
  socket?: Socket;
  opening: Promise<Socket>;
  detach?: () => void;
}

/** A socket handed out: ready now, or still opening (the upgrade waits for it). */
export type Taken = { socket: Socket; opening?: undefined } | { socket?: undefined; opening: Promise<Socket> };

/** Openings not caused by a connection (replacing sockets the proxy closed): at most this many a minute. */
const REFILLS_PER_MINUTE = 3;
const MINUTE = 60_000;
/**
 * Connections closer together than the time it takes to open a replacement count as one burst (a
 * browser opens its 6 at once); sequential ones, each replaced before the next, need one socket.
 * Before a socket has been timed, and within these bounds:
 */
const BURST_WINDOW = { initial: 250, min: 100, max: 2000 };
/** A socket this close to the proxy's learned idle limit is closed rather than raced against it. */
const LIMIT_MARGIN = 0.8;
/**
 * Unused warm sockets are retired at this age, busy or not: a NAT or firewall may forget an idle
 * flow without a word, and a young socket is less likely to be one it forgot (Chromium keeps its
 * unused preconnects about as long).
 */
export const MAX_WARM_AGE_MS = 10_000;
/**
 * Warm sockets held by all pools of this process together, whatever local programs do (proxy mode
 * can name any number of sandboxes, and regional proxies have a base each).
 */
export const MAX_WARM_TOTAL = 16;
let heldTotal = 0;

/** Warm sockets held (open or opening) by every pool of this process. */
export function warmSocketsHeld(): number {
  return heldTotal;
}

function noop(): void {}

/**
 * Connections to one proxy base, opened ahead of need and never written to until taken. Kept while
 * connections arrive, sized to recent bursts, drained after a quiet period; sockets the proxy closes
 * are replaced a few times a minute at most, and each such close shrinks the pool.
 */
export class WarmPool {
  private readonly entries: Entry[] = [];
  private lastDemand = -Infinity;
  private demands: number[] = [];
  /** Adaptive cap: shrinks when the proxy closes warm sockets, grows back when they get used. */
  private limit: number;
  /** Openings allowed at once (one per connection that took or missed a socket). */
  private credits = 0;
  private refills: number[] = [];
  /** Lifetimes of the last few warm sockets the proxy closed; the longest is taken as its idle limit. */
  private lifetimes: number[] = [];
  private learnedLimitMs = Infinity;
  private burstWindowMs = BURST_WINDOW.initial;
  /** How long the last warm socket took to open (TCP, TLS, CONNECT): a measure of the round trip. */
  lastOpenMs: number | undefined;
  private quietTimer: NodeJS.Timeout | undefined;
  private refillTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly settings: WarmSettings,
    private readonly open: Opener,
  ) {
    this.limit = settings.max;
  }

  /** A connection is about to be opened: hand over the most advanced warm socket, if any. */
  take(): Taken | undefined {
    if (this.closed || this.settings.max === 0) return undefined;
    const now = Date.now();
    this.noteDemand(now);
    let found: Entry | undefined;
    // Newest ready first (least likely to have been closed); else the opening that started first.
    for (let i = this.entries.length - 1; i >= 0 && !found; i -= 1) {
      const e = this.entries[i] as Entry;
      if (e.socket === undefined) continue;
      if (e.socket.destroyed || now - e.born >= Math.min(MAX_WARM_AGE_MS, this.learnedLimitMs * LIMIT_MARGIN)) {
        this.remove(e);
        e.socket.destroy();
        continue;
      }
      found = e;
    }
    found ??= this.entries.find((e) => e.socket === undefined);
    this.credits += 1;
    if (found === undefined) {
      this.fill();
      return undefined;
    }
    this.remove(found);
    found.detach?.();
    this.fill();
    if (found.socket) {
      found.socket.ref();
      return { socket: found.socket };
    }
    return { opening: found.opening.then((s) => (s.ref(), s)) };
  }

  /** Starts warming before any connection (e.g. while the startup check runs). */
  start(): void {
    if (this.closed || this.settings.max === 0) return;
    // Counts as activity (the pool stays for the quiet period) but not as a connection of a burst.
    this.lastDemand = Date.now();
    this.armQuietTimer();
    this.credits += 1;
    this.fill();
  }

  /** A taken socket carried its upgrade: the proxy does not mind warm sockets, let the pool grow back. */
  used(): void {
    this.limit = Math.min(this.settings.max, this.limit + 1);
  }

  /** Closes every warm socket; nothing is opened afterwards. Safe to call more than once. */
  close(): void {
    this.closed = true;
    this.drain();
  }

  private noteDemand(now: number): void {
    this.lastDemand = now;
    this.demands = this.demands.filter((t) => now - t < this.settings.idleMs);
    this.demands.push(now);
    if (this.demands.length > 64) this.demands.shift();
    this.armQuietTimer();
  }

  private armQuietTimer(): void {
    this.quietTimer ??= setTimeout(() => this.onQuiet(), this.settings.idleMs).unref();
  }

  private onQuiet(): void {
    this.quietTimer = undefined;
    const left = this.lastDemand + this.settings.idleMs - Date.now();
    if (left > 0) this.quietTimer = setTimeout(() => this.onQuiet(), left).unref();
    else this.drain();
  }

  /** How many sockets to hold: the largest recent burst, at least one, within the adaptive cap. */
  private wanted(now: number): number {
    if (this.closed || now - this.lastDemand >= this.settings.idleMs) return 0;
    let burst = 1;
    for (let i = 0, j = 0; i < this.demands.length; i += 1) {
      while ((this.demands[i] as number) - (this.demands[j] as number) > this.burstWindowMs) j += 1;
      burst = Math.max(burst, i - j + 1);
    }
    return Math.min(this.limit, burst);
  }

  private fill(): void {
    const now = Date.now();
    let missing = this.wanted(now) - this.entries.length;
    this.refills = this.refills.filter((t) => now - t < MINUTE);
    while (missing > 0) {
      if (this.credits > 0) this.credits -= 1;
      else if (this.refills.length < REFILLS_PER_MINUTE) this.refills.push(now);
      else {
        this.scheduleRefill(now);
        break;
      }
      if (!this.add(now)) break;
      missing -= 1;
    }
    // Credits are for replacing at once what was just used, not a reserve for later.
    this.credits = 0;
  }

  private scheduleRefill(now: number): void {
    if (this.refillTimer !== undefined) return;
    const at = (this.refills[0] ?? now) + MINUTE;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      this.fill();
    }, Math.max(0, at - now)).unref();
  }

  private add(now: number): boolean {
    if (heldTotal >= MAX_WARM_TOTAL) return false;
    const opening = this.open();
    const entry: Entry = { born: now, opening };
    this.entries.push(entry);
    heldTotal += 1;
    opening.then(
      (socket) => {
        socket.on('error', noop);
        const ready = Date.now();
        this.lastOpenMs = ready - entry.born;
        this.burstWindowMs = Math.min(BURST_WINDOW.max, Math.max(BURST_WINDOW.min, 1.5 * (ready - entry.born)));
        if (!this.entries.includes(entry)) return;
        entry.socket = socket;
        entry.born = ready;
        this.watch(entry, socket);
        entry.retire = setTimeout(() => {
          if (!this.remove(entry)) return;
          entry.detach?.();
          socket.destroy();
          this.lost();
        }, MAX_WARM_AGE_MS).unref();
      },
      () => {
        // The proxy could not be reached: nothing is retried until the next connection, which
        // connects (and reports the failure) itself.
        this.remove(entry);
      },
    );
    // Taken while opening, the taker gets the failure; otherwise nobody waits for it.
    opening.catch(noop);
    return true;
  }

  /** Until taken, anything from the proxy (bytes, FIN, reset) means the socket is gone. */
  private watch(entry: Entry, socket: Socket): void {
    socket.unref();
    const onGone = (): void => {
      entry.detach?.();
      socket.destroy();
      if (!this.remove(entry)) return;
      // A proxy closing idle connections: learn after how long (the longest of the last few, so a
      // one-off close such as a proxy restart does not teach a tiny limit), and hold fewer.
      this.lifetimes = [...this.lifetimes.slice(-2), Math.max(1, Date.now() - entry.born)];
      this.learnedLimitMs = Math.max(...this.lifetimes);
      this.limit = Math.max(1, this.limit - 1);
      if (!this.sparse()) this.lost();
    };
    socket.on('readable', onGone);
    socket.on('close', onGone);
    entry.detach = () => {
      socket.off('readable', onGone);
      socket.off('close', onGone);
    };
  }

  /**
   * Connections come further apart than the proxy keeps an idle socket open: a socket opened to
   * replace one it closed would die unused too. Then only a connection's own take opens one.
   */
  private sparse(): boolean {
    const gaps = this.demands.slice(-9).map((t, i, a) => t - (a[i - 1] ?? t)).slice(1).sort((a, b) => a - b);
    if (gaps.length === 0) return false;
    return (gaps[gaps.length >> 1] as number) > this.learnedLimitMs * LIMIT_MARGIN;
  }

  private lost(): void {
    if (!this.closed) this.fill();
  }

  /** Takes an entry out of the pool (handed out, gone or retired); false when it was not in it. */
  private remove(entry: Entry): boolean {
    const i = this.entries.indexOf(entry);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    clearTimeout(entry.retire);
    heldTotal -= 1;
    return true;
  }

  private drain(): void {
    // What was learned applies to this period of use; the proxy may behave otherwise next time.
    this.lifetimes = [];
    this.learnedLimitMs = Infinity;
    this.limit = this.settings.max;
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    clearTimeout(this.refillTimer);
    this.refillTimer = undefined;
    for (const e of [...this.entries]) {
      this.remove(e);
      e.detach?.();
      e.socket?.destroy();
      void e.opening.then((s) => s.destroy(), noop);
    }
  }
}
