import type { Duplex } from 'node:stream';
import { LOW_QUEUED_WRITES, MAX_QUEUED_WRITES, SMALL_PIECE, TURN_BUDGET } from './limits.js';

/**
 * Bytes that all relays of this process hold for the end of the turn. A busy tunnel may read up
 * to its mark in one turn; a thousand of them would hold a thousand marks at once, where writing
 * at once hands the bytes to the kernel. Past the budget, pieces are written as they come.
 */
let heldForTurn = 0;

/** What the writer needs from its relay. */
export interface DownstreamHooks {
  /** Stop reading from the peer: the stream's reader is slow. */
  pause(): void;
  /** The stream's reader caught up: read from the peer again. */
  resume(): void;
  /** A batch was handed to the stream. */
  flushed(): void;
  /** A write completed. */
  written(): void;
  /** The bytes that may cross (a filter), or undefined when the tunnel was cut instead. */
  filter(piece: Buffer): Buffer | undefined;
}

/**
 * Writes the peer's payload to the stream, pausing the peer while the stream holds `hwm` bytes or
 * too many writes. What arrives together is written at once: a write costs a system call and memory
 * of its own (a flood of 1-byte frames would cost hundreds of bytes per byte), and the peer's reads
 * are parsed even while paused. `turns`: pieces of frames come in 16 KiB reads, so wait for the end
 * of the event loop's turn (all the reads libuv made in it); whole messages are already one write
 * each, so a message and those parsed with it go out before the next read (no wait to pay for).
 */
export class Downstream {
  /** Paused for a slow reader of the stream. */
  paused = false;
  /** Writes to the stream that have not completed yet. */
  private queued = 0;
  private arrived: Buffer[] = [];
  private arrivedBytes = 0;
  private flushPending = false;
  private readonly lowWater: number;

  constructor(
    private readonly stream: Duplex,
    private readonly hwm: number,
    private readonly turns: boolean,
    private readonly hooks: DownstreamHooks,
  ) {
    this.lowWater = hwm >>> 2;
  }

  /** Bytes wait here: received and not yet written, written and not yet taken, or paused. */
  get busy(): boolean {
    return this.paused || this.queued + this.arrived.length > 0;
  }

  /**
   * `frameEnd`: the piece ends a frame. The rest of a frame is on its way, so a piece that does
   * not end one waits for it (up to `hwm` bytes): written at once, a frame split across reads
   * would cost several small writes instead of one, whenever the client keeps up with its peer.
   */
  push(piece: Buffer, frameEnd: boolean): void {
    this.arrived.push(piece);
    this.arrivedBytes += piece.length;
    if (this.turns) heldForTurn += piece.length;
    if (this.arrivedBytes >= this.hwm || this.arrived.length >= MAX_QUEUED_WRITES || heldForTurn >= TURN_BUDGET) this.flush();
    else if (frameEnd && !this.flushPending) {
      this.flushPending = true;
      if (this.turns) setImmediate(this.onBatchEnd);
      else queueMicrotask(this.onBatchEnd);
    }
  }

  private readonly onBatchEnd = (): void => {
    this.flushPending = false;
    this.flush();
  };

  /** Writes what has arrived now (before an end, a stop, or at the end of the turn). */
  readonly flush = (): void => {
    const arrived = this.arrived;
    if (arrived.length === 0) return;
    const bytes = this.arrivedBytes;
    this.arrived = [];
    this.arrivedBytes = 0;
    if (this.turns) heldForTurn -= bytes;
    if (this.stream.destroyed) return;
    if (arrived.length === 1 || bytes < SMALL_PIECE * arrived.length) {
      this.write(arrived.length === 1 ? (arrived[0] as Buffer) : Buffer.concat(arrived, bytes));
    } else {
      // Large pieces go out as they are, in one writev: no copy.
      this.stream.cork();
      for (const piece of arrived) this.write(piece);
      this.stream.uncork();
    }
    this.hooks.flushed();
    if (!this.paused && (this.stream.writableLength >= this.hwm || this.queued >= MAX_QUEUED_WRITES)) {
      this.paused = true;
      this.hooks.pause();
    }
  };

  private write(piece: Buffer): void {
    const chunk = this.hooks.filter(piece);
    if (chunk === undefined || chunk.length === 0 || this.stream.destroyed) return;
    this.queued += 1;
    this.stream.write(chunk, this.onWritten);
  }

  // Resumes on completed writes rather than 'drain': writes below the byte mark never ask for a
  // 'drain', so a pause for their count would never end.
  private readonly onWritten = (): void => {
    this.queued -= 1;
    this.hooks.written();
    if (!this.paused || this.stream.writableLength > this.lowWater || this.queued > LOW_QUEUED_WRITES) return;
    this.paused = false;
    this.hooks.resume();
  };
}
