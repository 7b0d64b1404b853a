/**
 * While our frames wait on the peer's backpressure (its program is not reading), its silence is
 * not taken for death until this long, or six keepalive intervals if longer: a peer that accepts
 * no byte and answers nothing for that long is gone. Any sign of life (a pong, solicited or not)
 * starts the count again.
 */
export const BLOCKED_SILENCE_MS = 120_000;
const BLOCKED_SILENCE_INTERVALS = 6;

/**
 * Keepalive bookkeeping for one tunnel, kept apart from flow control: silence while we do not read
 * (paused for a slow reader) is ours, not the peer's; silence while our upload waits on the peer's
 * backpressure gets the long BLOCKED_SILENCE_MS bound; any other silence fails after two intervals.
 */
export class Liveness {
  /** Set on any sign of life from the peer; cleared by each tick. */
  active = true;
  /** Keepalive intervals in a row without a sign of life. */
  missed = 0;
  private lastTickAt = Date.now();
  private blockedSince: number | undefined;

  /** One keepalive interval ended. Returns why the peer is taken for dead, or undefined. */
  tick(readingPaused: boolean, uploadBlocked: boolean): string | undefined {
    const now = Date.now();
    const interval = now - this.lastTickAt;
    this.lastTickAt = now;
    if (this.active || readingPaused) {
      this.active = false;
      this.missed = 0;
      this.blockedSince = undefined;
      return undefined;
    }
    if (uploadBlocked) {
      this.blockedSince ??= now - interval;
      const silent = now - this.blockedSince;
      return silent >= Math.max(BLOCKED_SILENCE_MS, BLOCKED_SILENCE_INTERVALS * interval) ? `no pong while our data waited for ${Math.round(silent / 1000)} s` : undefined;
    }
    this.missed += 1;
    return this.missed >= 2 ? 'no data and no pong for two keepalive intervals' : undefined;
  }
}
