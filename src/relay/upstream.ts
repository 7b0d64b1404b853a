import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import { LOW_QUEUED_WRITES, MAX_QUEUED_WRITES } from './limits.js';

const SEND_OPTIONS = { binary: true } as const;

/** What the sender needs from its relay. */
export interface UpstreamHooks {
  /** A frame was written to the peer's socket. */
  sent(): void;
  /** The peer caught up: may the stream be read again? */
  mayResume(): boolean;
}

/**
 * Sends the stream's bytes to the peer as binary frames, pausing the stream while `hwm` bytes or
 * too many frames wait in ws.
 */
export class Upstream {
  /** Paused because the peer reads slowly. */
  paused = false;
  /** Frames handed to ws whose write has not completed yet. */
  unsent = 0;
  private readonly lowWater: number;

  constructor(
    private readonly ws: WebSocket,
    private readonly stream: Duplex,
    private readonly hwm: number,
    private readonly hooks: UpstreamHooks,
  ) {
    this.lowWater = hwm >>> 2;
  }

  /** Frames wait here: handed to ws and not yet written, or the stream paused behind them. */
  get busy(): boolean {
    return this.paused || this.unsent > 0;
  }

  send(chunk: Buffer): void {
    this.unsent += 1;
    this.ws.send(chunk, SEND_OPTIONS, this.onSent);
    if (!this.paused && (this.ws.bufferedAmount >= this.hwm || this.unsent >= MAX_QUEUED_WRITES)) {
      this.paused = true;
      this.stream.pause();
    }
  }

  private readonly onSent = (err?: Error | null): void => {
    this.unsent -= 1;
    if (err) return;
    if (this.paused && this.ws.bufferedAmount <= this.lowWater && this.unsent <= LOW_QUEUED_WRITES) {
      this.paused = false;
      if (this.hooks.mayResume()) this.stream.resume();
    }
    this.hooks.sent();
  };
}
