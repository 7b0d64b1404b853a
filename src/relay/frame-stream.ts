import { Writable } from 'node:stream';
import type WebSocket from 'ws';

/** What the frame stream hands on: payload pieces in order, or the peer's protocol violation. */
export interface FrameStreamHooks {
  /** A piece of a binary frame's payload, a view into the socket's read (not a copy); `frameEnd`: its last. */
  data(piece: Buffer, frameEnd: boolean): void;
  /** The peer broke the protocol in a way only this reader can see; nothing more is read. */
  error(err: Error & { code: string }, closeCode: number): void;
}

// Frame opcodes (RFC 6455 5.2).
const CONTINUATION = 0x0;
const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;
/** Largest header of an unmasked frame: 2 bytes, then up to 8 of extended length. */
const MAX_HEADER = 10;

type Mode = 'frames' | 'ws' | 'closed';

interface ReceiverInternals extends Writable {
  _state?: unknown;
  _bufferedBytes?: unknown;
}

/**
 * Reads the binary data frames a server sends a client straight out of the socket's reads, and hands
 * ws everything else (ping, pong, close; and any frame it must judge, such as text or a malformed
 * header, after which ws reads all the rest). Returns false, changing nothing, if ws's receiver is
 * not what this expects; the relay then takes ws's 'message' events as before.
 *
 * Why: ws gathers a whole message before it emits it, so every 64 KiB frame was copied out of the
 * 16 KiB pieces Node's TLS socket delivers into a fresh buffer, and written to the local socket on
 * its own. Streamed, no byte is copied, and the relay writes what a turn of the event loop brought at once; the
 * client's download costs about a fifth less CPU (docs/benchmarks.md).
 *
 * Why a ws internal: ws has no streaming receiver. Its Receiver (`ws._receiver`, ws 8) takes every
 * byte of the socket through `write()`, from its 'data' listener and from its drain at close; this
 * wraps that method on the one instance. Guarded: a receiver that is not a Writable at a frame
 * boundary is left alone, and test/frame-stream.test.js fails if the hook stops being installed.
 */
export function streamBinaryFrames(ws: WebSocket, maxPayload: number, hooks: FrameStreamHooks): boolean {
  const receiver = (ws as unknown as { _receiver?: unknown })._receiver as ReceiverInternals | undefined;
  if (!(receiver instanceof Writable) || receiver._state !== 0 || receiver._bufferedBytes !== 0) return false;
  const wsWrite = receiver.write.bind(receiver) as (chunk: Buffer) => boolean;
  const reader = new FrameReader(wsWrite, maxPayload, hooks);
  receiver.write = reader.write as Writable['write'];
  return true;
}

/** The length of an unmasked header whose second byte is `b1`: 2, plus the extended length it announces. */
function length7Bytes(b1: number): number {
  const length7 = b1 & 0x7f;
  return length7 === 126 ? 4 : length7 === 127 ? 10 : 2;
}

class FrameReader {
  private mode: Mode = 'frames';
  private readonly header = Buffer.alloc(MAX_HEADER);
  private headerLength = 0;
  /** Payload bytes of the current data frame still to come. */
  private left = 0;
  /** Inside a binary message whose final frame has not come yet. */
  private fragmented = false;
  /** A control frame being gathered (at most 127 bytes), and how much of it has come. */
  private control: Buffer | undefined;
  private controlLength = 0;

  constructor(
    /** ws's own receiver, which reads what this does not. */
    private readonly wsWrite: (chunk: Buffer) => boolean,
    private readonly maxPayload: number,
    private readonly hooks: FrameStreamHooks,
  ) {}

  readonly write = (chunk: Buffer): boolean => {
    if (this.mode === 'ws') return this.wsWrite(chunk);
    let offset = 0;
    while (offset < chunk.length && this.mode === 'frames') {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - offset);
        this.left -= n;
        this.hooks.data(chunk.subarray(offset, offset + n), this.left === 0);
        offset += n;
      } else if (this.control !== undefined) {
        offset = this.gatherControl(chunk, offset);
      } else {
        this.header[this.headerLength++] = chunk[offset++] as number;
        // Judged on its first two bytes, as ws does: a bad frame must not wait for more bytes.
        if (this.headerLength === 2) offset = this.onFirstBytes(chunk, offset);
        if (this.mode === 'frames' && this.headerLength >= 2 && this.headerLength >= length7Bytes(this.header[1] as number)) offset = this.onHeader(chunk, offset);
      }
    }
    return true;
  };

  /**
   * The first two bytes say what the frame is. Reserved bits, a mask (a server must not mask),
   * text, unknown opcodes and malformed control frames go to ws, which judges them; a message
   * interrupted by another fails here, because ws never saw the message. Returns where reading
   * goes on in `chunk`.
   */
  private onFirstBytes(chunk: Buffer, offset: number): number {
    const b0 = this.header[0] as number;
    const b1 = this.header[1] as number;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return this.handOver(chunk, offset);
    if (this.fragmented && (opcode === TEXT || opcode === BINARY)) {
      return this.fail(`Invalid WebSocket frame: invalid opcode ${opcode}`, 'WS_ERR_INVALID_OPCODE', 1002, chunk.length);
    }
    const control = opcode === PING || opcode === PONG || opcode === CLOSE;
    const data = opcode === BINARY || (opcode === CONTINUATION && this.fragmented);
    if ((b1 & 0x80) !== 0 || !(control || data)) return this.handOver(chunk, offset);
    if (control && ((b0 & 0x80) === 0 || (b1 & 0x7f) > 125)) return this.handOver(chunk, offset);
    return offset;
  }

  /** A whole header of a frame onFirstBytes let through; returns where reading goes on. */
  private onHeader(chunk: Buffer, offset: number): number {
    const b0 = this.header[0] as number;
    const opcode = b0 & 0x0f;
    const length = this.payloadLength();
    if (length > this.maxPayload && opcode < CLOSE) {
      // ws would take a lone continuation for a protocol error: say what it says of a large frame.
      if (opcode === CONTINUATION) return this.fail('Max payload size exceeded', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009, chunk.length);
      return this.handOver(chunk, offset);
    }
    this.headerLength = 0;
    if (opcode === PING || opcode === PONG || opcode === CLOSE) {
      this.control = Buffer.allocUnsafe(2 + length);
      this.header.copy(this.control, 0, 0, 2);
      this.controlLength = 2;
      return length === 0 ? this.handControl(offset) : offset;
    }
    this.fragmented = (b0 & 0x80) === 0;
    this.left = length;
    return offset;
  }

  /** The payload length the header gives (lengths beyond 2^53 come out inexact, and too large). */
  private payloadLength(): number {
    const length7 = (this.header[1] as number) & 0x7f;
    if (length7 === 126) return this.header.readUInt16BE(2);
    if (length7 === 127) return this.header.readUInt32BE(2) * 2 ** 32 + this.header.readUInt32BE(6);
    return length7;
  }

  private gatherControl(chunk: Buffer, offset: number): number {
    const control = this.control as Buffer;
    const n = Math.min(control.length - this.controlLength, chunk.length - offset);
    chunk.copy(control, this.controlLength, offset, offset + n);
    this.controlLength += n;
    return this.controlLength === control.length ? this.handControl(offset + n) : offset + n;
  }

  /** Gives ws one whole control frame: it answers pings, counts pongs and runs the close. */
  private handControl(offset: number): number {
    const control = this.control as Buffer;
    this.control = undefined;
    // After a close frame the peer sends nothing more; ws ignores what follows, and so does this.
    if (((control[0] as number) & 0x0f) === CLOSE) this.mode = 'closed';
    this.wsWrite(control);
    return offset;
  }

  /** From this frame on ws reads everything: it refuses the frame, or (text) the relay does. */
  private handOver(chunk: Buffer, offset: number): number {
    this.mode = 'ws';
    const header = Buffer.from(this.header.subarray(0, this.headerLength));
    this.headerLength = 0;
    this.wsWrite(offset < chunk.length ? Buffer.concat([header, chunk.subarray(offset)]) : header);
    return chunk.length;
  }

  private fail(message: string, code: string, closeCode: number, end: number): number {
    this.mode = 'closed';
    this.hooks.error(Object.assign(new Error(message), { code }), closeCode);
    return end;
  }
}
