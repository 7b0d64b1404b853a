// What a relay is given and what it reports when it ends.
import type { TunnelError } from '../errors.js';

export interface RelayOptions {
  /** Pause the producer when this many bytes wait to be written on either side. */
  highWaterMark?: number;
  /** After the stream ends its write side, keep delivering until the WebSocket has been idle this long. */
  lingerMs?: number;
  /** How long a close handshake may take before the socket is cut. */
  closeGraceMs?: number;
  /** How long close() (a stop) waits for data already received to be written to the stream before resetting it. */
  stopFlushMs?: number;
  /** Called once, after both sides are closed. */
  onEnd: (result: RelayResult) => void;
  /**
   * Read binary frames straight from the socket instead of ws's whole messages (a client's relay:
   * its server's frames are unmasked), refusing frames over `maxPayload` bytes.
   */
  streamFrames?: { maxPayload: number };
  /** Frames the bytes of a protocol that runs inside the tunnel (the -D HTTP proxy's requests). */
  filter?: StreamFilter;
}

/**
 * Sees each chunk before it crosses the relay and returns what may cross (possibly nothing, or a
 * rewritten chunk). Throwing a TunnelError cuts the tunnel both ways. Used to keep one HTTP
 * request's bytes, and no others, in its tunnel.
 */
export interface StreamFilter {
  /** Bytes from the stream, on their way to the WebSocket. */
  up?(chunk: Buffer): Buffer;
  /** Bytes from the WebSocket, on their way to the stream. */
  down?(chunk: Buffer): Buffer;
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
