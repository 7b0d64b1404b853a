import type { Duplex } from 'node:stream';
import { Socket } from 'node:net';
import type WebSocket from 'ws';
import { ErrorCodes, TunnelError, redact } from '../errors.js';

export interface RelayOptions {
  /** Pause the producer when this many bytes wait to be written on either side. */
  highWaterMark?: number;
  /** After the stream ends its write side, keep delivering until the WebSocket has been idle this long. */
  lingerMs?: number;
  /** How long a close handshake may take before the socket is cut. */
  closeGraceMs?: number;
  /** Called once, after both sides are closed. */
  onEnd: (result: RelayResult) => void;
}

export interface RelayResult {
  /** Bytes read from the stream and sent as binary frames. */
  bytesUp: number;
  /** Bytes received in binary frames and written to the stream. */
  bytesDown: number;
  /** Milliseconds from the start of the relay to its end. */
  durationMs: number;
  /** Why the relay ended, in a few words. */
  reason: string;
  /** The WebSocket close code, when a close frame was seen or sent. */
  closeCode?: number;
  /** Set when the relay ended because something went wrong. */
  error?: TunnelError;
}

export const DEFAULT_HIGH_WATER_MARK = 256 * 1024;
const SEND_OPTIONS = { binary: true } as const;
// WebSocket.readyState values (RFC 6455 / WHATWG); spelled out so this module does not load ws.
const CONNECTING = 0;
const OPEN = 1;
/** Close codes that mean "finished normally": the stream is ended gracefully rather than reset. */
const NORMAL_CLOSES = new Set([1000, 1001, 1005]);

/**
 * Relays bytes between one WebSocket (binary frames) and one byte stream, both ways, with
 * backpressure on each side, and tears both down exactly once. Used by the client (local socket)
 * and by the reference server (socket to the target port), so both sides share one set of rules.
 */
export class Relay {
  bytesUp = 0;
  bytesDown = 0;
  /** Set on any sign of life from the peer; cleared by the keepalive sweep. */
  active = true;
  /** Keepalive intervals in a row without a sign of life. */
  missed = 0;
  readonly startedAt = Date.now();

  private readonly hwm: number;
  private readonly lowWater: number;
  private readonly lingerMs: number;
  private readonly closeGraceMs: number;
  private readonly onEnd: (result: RelayResult) => void;
  private upPaused = false;
  private downPaused = false;
  private streamEnded = false;
  private wsClosed = false;
  private streamClosed = false;
  private finished = false;
  private closeCode: number | undefined;
  private reason = 'closed';
  private error: TunnelError | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  /** Frames handed to ws whose write has not completed yet. */
  private unsent = 0;
  /** The linger ran out while our frames were still queued: end once they are written. */
  private endWhenFlushed = false;

  constructor(
    readonly ws: WebSocket,
    readonly stream: Duplex,
    options: RelayOptions,
  ) {
    this.hwm = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.lowWater = this.hwm >>> 2;
    this.lingerMs = options.lingerMs ?? 2000;
    this.closeGraceMs = options.closeGraceMs ?? 2000;
    this.onEnd = options.onEnd;

    ws.on('message', this.onMessage);
    ws.on('pong', this.onAlive);
    ws.on('ping', this.onAlive);
    ws.on('error', this.onWsError);
    ws.on('close', this.onWsClose);
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

  /** Closes both sides with a WebSocket close frame (1001 when stopping). */
  close(code = 1001, reason = 'tunnel closing'): void {
    if (this.reason === 'closed') this.reason = reason;
    this.closeWs(code, reason);
    if (!this.wsClosed) return;
    this.stream.end();
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

  /** One keepalive tick: ping, and fail after two intervals without a sign of life. Returns false once dead. */
  keepaliveTick(): boolean {
    if (this.finished || this.wsClosed) return false;
    // While a slow local reader holds the WebSocket paused, no frame (pong included) can be read:
    // that silence is ours, not the peer's, and must not end a healthy download.
    if (this.active || this.downPaused) {
      this.active = false;
      this.missed = 0;
    } else if (++this.missed >= 2) {
      this.fail(new TunnelError(ErrorCodes.KEEPALIVE, 'The tunnel stopped answering (no data and no pong for two keepalive intervals)'), 1001);
      this.ws.terminate();
      return false;
    }
    // Ping every interval, busy or not, so idle-timeout middleboxes see traffic both ways.
    if (this.ws.readyState === OPEN) this.ws.ping();
    return true;
  }

  private readonly onAlive = (): void => {
    this.active = true;
  };

  private readonly onStreamData = (chunk: Buffer): void => {
    if (this.ws.readyState !== OPEN) return;
    this.bytesUp += chunk.length;
    this.unsent += 1;
    this.ws.send(chunk, SEND_OPTIONS, this.onSent);
    if (!this.upPaused && this.ws.bufferedAmount >= this.hwm) {
      this.upPaused = true;
      this.stream.pause();
    }
  };

  // A completed write means the peer's TCP stack is taking our data: that counts as liveness,
  // so a ping queued behind megabytes of upload never looks like a dead peer.
  private readonly onSent = (err?: Error | null): void => {
    this.unsent -= 1;
    if (err) return;
    this.active = true;
    if (this.upPaused && this.ws.bufferedAmount <= this.lowWater) {
      this.upPaused = false;
      if (!this.streamEnded) this.stream.resume();
    }
    if (this.endWhenFlushed && this.unsent === 0) this.endGracefully();
  };

  private readonly onMessage = (data: Buffer, isBinary: boolean): void => {
    this.active = true;
    if (!isBinary) {
      this.fail(new TunnelError(ErrorCodes.PROTOCOL, 'The peer sent a text frame; the tunnel carries binary frames only'), 1003);
      return;
    }
    if (this.streamClosed) return;
    this.bytesDown += data.length;
    this.stream.write(data);
    if (this.streamEnded) this.armLinger();
    if (!this.downPaused && this.stream.writableLength >= this.hwm) {
      this.downPaused = true;
      this.ws.pause();
      this.stream.once('drain', this.onStreamDrain);
    }
  };

  private readonly onStreamDrain = (): void => {
    this.downPaused = false;
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
    if (this.wsClosed) return;
    this.endWhenFlushed = false;
    if (this.lingerTimer) this.lingerTimer.refresh();
    else this.lingerTimer = setTimeout(this.onLingerEnd, this.lingerMs);
  }

  private readonly onLingerEnd = (): void => {
    // Paused for a slow local reader, we are not reading what the peer sent: not idle. The
    // drain that resumes reading starts the linger again.
    if (this.wsClosed || this.downPaused) return;
    // A close frame queued now would start ws's close timer while our data is still in flight.
    if (this.unsent > 0) this.endWhenFlushed = true;
    else this.endGracefully();
  };

  /** Ends a tunnel whose stream has ended and whose data has all been written. */
  private endGracefully(): void {
    this.endWhenFlushed = false;
    if (this.reason === 'closed') this.reason = 'local end';
    this.closeWs(1000, 'local end', true);
  }

  private readonly onStreamError = (err: NodeJS.ErrnoException): void => {
    const code = err.code === 'ECONNRESET' || err.code === 'EPIPE' ? ErrorCodes.LOCAL_RESET : ErrorCodes.INTERNAL;
    this.fail(new TunnelError(code, `The connection was reset (${err.code ?? err.message})`, { detail: err.message }));
  };

  private readonly onStreamClose = (): void => {
    this.streamClosed = true;
    if (!this.wsClosed) {
      // Destroyed without an error (e.g. by the owner): end the tunnel too.
      this.closeWs(this.error ? 1011 : 1000, this.error ? this.error.code : 'closed');
    }
    this.maybeFinish();
  };

  private readonly onWsError = (err: Error & { code?: string }): void => {
    if (this.error !== undefined) return;
    const oversized = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
    const protocol = err.code !== undefined && err.code.startsWith('WS_ERR_');
    this.error = protocol
      ? new TunnelError(ErrorCodes.PROTOCOL, oversized ? 'The peer sent a frame larger than the maximum payload' : `The peer broke the WebSocket protocol (${err.message})`, { detail: err.message })
      : new TunnelError(ErrorCodes.REMOTE_CLOSED, `The tunnel connection failed (${err.code ?? err.message})`, { detail: err.message });
    this.reason = this.error.message;
  };

  private readonly onWsClose = (code: number, reason: Buffer): void => {
    if (this.wsClosed) return;
    this.wsClosed = true;
    this.closeCode = code;
    clearTimeout(this.lingerTimer);
    clearTimeout(this.graceTimer);
    if (this.downPaused) {
      this.stream.off('drain', this.onStreamDrain);
      this.downPaused = false;
    }
    if (this.error === undefined && !NORMAL_CLOSES.has(code)) {
      // Redacted before it is cut, so a secret echoed by the peer cannot survive as a fragment.
      const text = reason.length > 0 ? `: ${redact(reason.toString('utf8')).slice(0, 120)}` : '';
      this.error = new TunnelError(
        ErrorCodes.REMOTE_CLOSED,
        code === 1006 ? 'The tunnel connection dropped without a close frame (1006)' : `The tunnel was closed by the peer with code ${code}${text}`,
      );
      this.reason = this.error.message;
    }
    if (this.error !== undefined) {
      this.destroyStream(true);
    } else {
      if (this.reason === 'closed') this.reason = code === 1005 ? 'closed by peer' : `closed by peer (${code})`;
      // Flush what is queued, then close; data the local side still sends has nowhere to go.
      this.stream.end();
      this.stream.resume();
      this.stream.once('finish', () => this.destroyStream(false));
    }
    this.maybeFinish();
  };

  /** Sends a close frame once; `patient`: a graceful end, which a slow peer may take long to answer. */
  private closeWs(code: number, reason: string, patient = false): void {
    if (this.wsClosed) return;
    const state = this.ws.readyState;
    if (state === OPEN) {
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
    if (!patient) this.graceTimer ??= setTimeout(() => this.ws.terminate(), this.closeGraceMs).unref();
  }

  private destroyStream(abort: boolean): void {
    if (this.streamClosed || this.stream.destroyed) return;
    if (abort && this.stream instanceof Socket && !this.stream.pending) this.stream.resetAndDestroy();
    else this.stream.destroy();
  }

  private maybeFinish(): void {
    if (this.finished || !this.wsClosed || !this.streamClosed) return;
    this.finished = true;
    clearTimeout(this.lingerTimer);
    clearTimeout(this.graceTimer);
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
