import type { Duplex } from 'node:stream';
import { Socket } from 'node:net';
import type WebSocket from 'ws';
import { ErrorCodes, TunnelError } from '../errors.js';
import { onCloseFrame } from './close-frame.js';
import { NORMAL_CLOSES, peerCloseError, streamError, webSocketError } from './failures.js';
import { streamBinaryFrames } from './frame-stream.js';
import { Downstream } from './downstream.js';
import { DEFAULT_HIGH_WATER_MARK } from './limits.js';
import { Liveness } from './liveness.js';
import { Upstream } from './upstream.js';
import type { RelayOptions, RelayResult, StreamFilter } from './relay-types.js';

export type { RelayOptions, RelayResult, StreamFilter } from './relay-types.js';

// WebSocket.readyState values (RFC 6455 / WHATWG); spelled out so this module does not load ws.
const CONNECTING = 0;
const OPEN = 1;

/**
 * Relays bytes between one WebSocket (binary frames) and one byte stream, both ways, with
 * backpressure on each side, and tears both down exactly once. Used by the client (local socket)
 * and by the reference server (socket to the target port), so both sides share one set of rules.
 */
export class Relay {
  bytesUp = 0;
  bytesDown = 0;
  readonly liveness = new Liveness();
  readonly startedAt = Date.now();

  private readonly lingerMs: number;
  private readonly closeGraceMs: number;
  private readonly onEnd: (result: RelayResult) => void;
  private readonly filter: StreamFilter | undefined;
  private streamEnded = false;
  private wsClosed = false;
  private streamClosed = false;
  private finished = false;
  private closeCode: number | undefined;
  private reason = 'closed';
  private error: TunnelError | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly stopFlushMs: number;
  /** The peer's close frame has been read: nothing more will come from it. */
  private peerClosed = false;
  /** We sent a close frame first. */
  private closeSent = false;
  /** close() was called: incoming data is dropped, the stream is reset once flushed. */
  private stopping = false;
  /** What stopped the tunnel, for the messages ("stop", "server stop"). */
  private stopReason = 'stop';
  /** Sends the stream's bytes to the peer. */
  private readonly up: Upstream;
  /** Writes the peer's payload to the stream. */
  private readonly down: Downstream;
  /** The linger ran out while our frames were still queued: end once they are written. */
  private endWhenFlushed = false;

  constructor(
    readonly ws: WebSocket,
    readonly stream: Duplex,
    options: RelayOptions,
  ) {
    const hwm = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.lingerMs = options.lingerMs ?? 2000;
    this.closeGraceMs = options.closeGraceMs ?? 2000;
    this.stopFlushMs = options.stopFlushMs ?? 400;
    this.onEnd = options.onEnd;
    this.filter = options.filter;
    this.up = new Upstream(ws, stream, hwm, { sent: this.onSent, mayResume: () => !this.streamEnded });
    const streaming = options.streamFrames !== undefined && streamBinaryFrames(ws, options.streamFrames.maxPayload, { data: this.onData, error: this.onFrameError });
    this.down = new Downstream(stream, hwm, streaming, {
      pause: () => ws.pause(),
      resume: this.onDownResumed,
      flushed: () => {
        if (this.streamEnded) this.armLinger();
      },
      written: () => {
        if (this.stopping && !this.peerClosed && stream.writableLength === 0) this.destroyStream(true);
      },
      filter: (piece) => this.filtered(this.filter?.down, piece),
    });
    ws.on('message', this.onMessage);
    ws.on('pong', this.onAlive);
    ws.on('ping', this.onAlive);
    ws.on('error', this.onWsError);
    ws.on('close', this.onWsClose);
    onCloseFrame(ws, this.onPeerClose);
    stream.on('data', this.onStreamData);
    stream.on('end', this.onStreamEnd);
    stream.on('error', this.onStreamError);
    stream.on('close', this.onStreamClose);
    if (ws.readyState !== OPEN) {
      this.onWsClose(1006, Buffer.alloc(0));
    } else {
      // The client pauses a fresh WebSocket until its relay listens (see connect.ts).
      ws.resume();
      stream.resume();
    }
  }

  /**
   * Stops the tunnel (Ctrl-C, server shutdown, idle timeout), `reason` naming what stopped it
   * ("stop", "server stop"). Nothing more is read or accepted; data already received is written to
   * the stream for up to `stopFlushMs`, then the stream is reset (no FIN without a normal end); the
   * peer gets a close with `code` and resets its side. It counts as TL_ERR_INTERRUPTED only when
   * bytes were queued either way: an idle, lingering or just-finished tunnel lost nothing.
   */
  close(code = 1001, reason = 'stop'): void {
    if (this.finished || this.stopping) return;
    this.stopping = true;
    this.stream.pause();
    const busy = this.busy();
    this.down.flush();
    // What arrives now is dropped: keep reading, so a peer held up by our pause can drain, read
    // our close frame and answer it within the grace.
    if (this.down.paused) {
      this.down.paused = false;
      this.ws.resume();
    }
    this.closeWs(code, reason, false, Math.min(this.closeGraceMs, this.stopFlushMs + 200));
    // A normal end already under way (the peer's 1000 came) may finish its flush within the bound.
    const ending = this.peerClosed && this.error === undefined;
    if (!ending) {
      // Reset either way (no FIN without a normal end), but an idle tunnel lost nothing.
      this.stopReason = reason;
      if (busy) this.noteCut();
      this.reason = this.error?.message ?? `closed by ${reason}`;
      if (this.stream.writableLength === 0) return this.destroyStream(true);
    }
    this.flushTimer = setTimeout(() => {
      if (this.streamClosed) return;
      this.error ??= new TunnelError(ErrorCodes.INTERRUPTED, `Cut by ${reason} before its data was delivered, not completed`);
      this.reason = this.error.message;
      this.destroyStream(true);
    }, this.stopFlushMs).unref();
  }

  /** A stop dropped bytes (queued here, or still arriving from the peer): the tunnel was cut. */
  private noteCut(): void {
    if (this.error !== undefined || this.finished) return;
    this.error = new TunnelError(ErrorCodes.INTERRUPTED, `Cut by ${this.stopReason} with data in flight, not completed`);
    this.reason = this.error.message;
  }

  /** Bytes still queued in either direction: a stop now would cut them. */
  private busy(): boolean {
    return this.up.busy || this.down.busy || this.ws.bufferedAmount + this.stream.writableLength > 0;
  }

  /** The local side has ended; the tunnel only delivers what the peer still sends (the linger). */
  get lingering(): boolean {
    return this.streamEnded && !this.finished;
  }

  /** Tears both sides down because of `error`; the first error wins. */
  fail(error: TunnelError, closeCode = 1011): void {
    if (this.error === undefined && !this.finished) {
      this.error = error;
      this.reason = error.message;
    }
    this.closeWs(closeCode, error.code);
    this.destroyStream(true);
  }

  /**
   * One keepalive tick: ping, and fail once the peer is taken for dead (see Liveness). Returns
   * false once dead. A side that holds the WebSocket paused for a slow reader cannot read pongs,
   * so it tells the peer it lives with an unsolicited pong (RFC 6455 5.5.3).
   */
  keepaliveTick(): boolean {
    if (this.finished || this.wsClosed) return false;
    const dead = this.liveness.tick(this.down.paused, this.up.unsent > 0);
    if (dead !== undefined) {
      this.fail(new TunnelError(ErrorCodes.KEEPALIVE, `The tunnel stopped answering (${dead})`), 1001);
      this.ws.terminate();
      return false;
    }
    if (this.ws.readyState === OPEN) {
      // Ping every interval, busy or idle, so idle-timeout middleboxes see traffic both ways.
      this.ws.ping();
      if (this.down.paused) this.ws.pong();
    }
    return true;
  }

  private readonly onAlive = (): void => {
    this.liveness.active = true;
  };

  private readonly onStreamData = (data: Buffer): void => {
    if (this.ws.readyState !== OPEN || this.stopping) return;
    const chunk = this.filtered(this.filter?.up, data);
    if (chunk === undefined || chunk.length === 0) return;
    this.bytesUp += chunk.length;
    this.up.send(chunk);
  };

  // A completed write means the peer's TCP stack is taking our data: that counts as liveness,
  // so a ping queued behind megabytes of upload never looks like a dead peer.
  private readonly onSent = (): void => {
    this.liveness.active = true;
    if (this.endWhenFlushed && this.up.unsent === 0) this.endGracefully();
  };

  private readonly onMessage = (data: Buffer, isBinary: boolean): void => {
    if (!isBinary) {
      this.fail(new TunnelError(ErrorCodes.PROTOCOL, 'The peer sent a text frame; the tunnel carries binary frames only'), 1003);
      return;
    }
    this.onData(data, true);
  };

  /** Payload from the peer: a whole message, or a piece of a frame (see streamBinaryFrames). */
  private readonly onData = (data: Buffer, frameEnd: boolean): void => {
    this.liveness.active = true;
    if (this.peerClosed) return;
    if (this.stopping) {
      // Bytes the peer sent before it saw our stop were in flight: dropping them is a cut.
      this.noteCut();
      return;
    }
    if (this.streamClosed) return;
    this.bytesDown += data.length;
    this.down.push(data, frameEnd);
  };

  private readonly onFrameError = (err: Error & { code: string }, closeCode: number): void => {
    this.fail(webSocketError(err), closeCode);
  };

  private readonly onDownResumed = (): void => {
    if (this.wsClosed || this.peerClosed || this.stopping) return;
    this.ws.resume();
    if (this.streamEnded) this.armLinger();
  };

  private readonly onStreamEnd = (): void => {
    this.streamEnded = true;
    // The protocol has no half-close: keep delivering what the peer still sends, then close.
    if (this.lingerMs <= 0) this.onLingerEnd();
    else this.armLinger();
  };

  private armLinger(): void {
    if (this.wsClosed || this.peerClosed || this.stopping) return;
    this.endWhenFlushed = false;
    if (this.lingerTimer) this.lingerTimer.refresh();
    else this.lingerTimer = setTimeout(this.onLingerEnd, this.lingerMs);
  }

  private readonly onLingerEnd = (): void => {
    // Paused for a slow local reader, we are not reading what the peer sent: not idle. The
    // drain that resumes reading starts the linger again.
    if (this.wsClosed || this.peerClosed || this.stopping || this.down.paused) return;
    // A close frame queued now would start ws's close timer while our data is still in flight.
    if (this.up.unsent > 0) this.endWhenFlushed = true;
    else this.endGracefully();
  };

  /** Ends a tunnel whose stream has ended and whose data has all been written. */
  private endGracefully(): void {
    this.endWhenFlushed = false;
    if (this.reason === 'closed') this.reason = 'local end';
    this.closeWs(1000, 'local end', true);
  }

  /** A chunk through the filter; undefined when the filter refused it and cut the tunnel. */
  private filtered(step: ((chunk: Buffer) => Buffer) | undefined, chunk: Buffer): Buffer | undefined {
    if (step === undefined) return chunk;
    try {
      return step(chunk);
    } catch (err) {
      this.fail(err instanceof TunnelError ? err : new TunnelError(ErrorCodes.PROTOCOL, String(err)));
      return undefined;
    }
  }

  private readonly onStreamError = (err: NodeJS.ErrnoException): void => {
    this.fail(streamError(err));
  };

  private readonly onStreamClose = (): void => {
    this.streamClosed = true;
    if (!this.wsClosed) {
      // Destroyed by the owner: an end only after the stream's own end, otherwise a cut.
      const ended = this.streamEnded || this.peerClosed;
      this.closeWs(this.error ? 1011 : ended ? 1000 : 1001, this.error ? this.error.code : 'closed');
    }
    this.maybeFinish();
  };

  private readonly onWsError = (err: Error & { code?: string }): void => {
    if (this.error !== undefined) return;
    this.error = webSocketError(err);
    this.reason = this.error.message;
  };

  private readonly onWsClose = (code: number, reason: Buffer): void => {
    if (this.wsClosed) return;
    this.wsClosed = true;
    clearTimeout(this.graceTimer);
    // Without the close-frame hook (or for a drop without one), the stream is settled only now.
    this.onPeerClose(code, reason);
    this.maybeFinish();
  };

  /** The peer's close frame was read (or the WebSocket closed): settle the stream, FIN or reset. */
  private readonly onPeerClose = (code: number, reason: Buffer): void => {
    if (this.peerClosed) return;
    this.peerClosed = true;
    this.closeCode = code;
    clearTimeout(this.lingerTimer);
    this.down.paused = false;
    // The answer to a close we sent (an end, a stop, a failure) says nothing new about the stream.
    const normal = NORMAL_CLOSES.has(code) || this.stopping || (this.closeSent && code === 1001);
    if (this.error === undefined && !normal) {
      this.error = peerCloseError(code, reason);
      this.reason = this.error.message;
    }
    if (this.error !== undefined) {
      // A stop flushes what it already holds first (close() bounds that).
      if (!this.stopping || this.stream.writableLength === 0) this.destroyStream(true);
    } else {
      if (this.reason === 'closed') this.reason = code === 1005 ? 'closed by peer' : `closed by peer (${code})`;
      // Flush what is queued, then FIN; data the local side still sends has nowhere to go.
      this.down.flush();
      this.stream.end();
      this.stream.resume();
      this.stream.once('finish', () => this.destroyStream(false));
    }
  };

  /** Sends a close frame once; `patient`: a graceful end, which a slow peer may take long to answer. */
  private closeWs(code: number, reason: string, patient = false, graceMs = this.closeGraceMs): void {
    if (this.wsClosed) return;
    const state = this.ws.readyState;
    if (state === OPEN) {
      this.closeSent = true;
      this.closeCode = code;
      this.ws.close(code, reason.slice(0, 120));
    }
    if (state === CONNECTING) {
      this.ws.terminate();
      return;
    }
    // A graceful end waits for the peer's answer, which comes only once it has drained our data;
    // ws's closeTimeout bounds that, and keepalive judges whether the peer is alive meanwhile.
    // A stop or a failure must not let an unanswered handshake hold the socket that long.
    if (!patient) this.graceTimer ??= setTimeout(() => this.ws.terminate(), graceMs).unref();
  }

  private destroyStream(abort: boolean): void {
    clearTimeout(this.flushTimer);
    if (this.streamClosed || this.stream.destroyed) return;
    if (abort && this.stream instanceof Socket && !this.stream.pending) this.stream.resetAndDestroy();
    else this.stream.destroy();
  }

  private maybeFinish(): void {
    if (this.finished || !this.wsClosed || !this.streamClosed) return;
    this.finished = true;
    clearTimeout(this.lingerTimer);
    clearTimeout(this.graceTimer);
    clearTimeout(this.flushTimer);
    this.onEnd({
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      durationMs: Date.now() - this.startedAt,
      reason: this.reason,
      closeCode: this.closeCode,
      error: this.error,
    });
  }
}
