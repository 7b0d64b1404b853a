// What each way a tunnel can fail means, as a TunnelError a person can act on.
import { ErrorCodes, TunnelError, redact } from '../errors.js';

/**
 * Close codes after which the stream is ended gracefully (FIN): the peer's input ended and all its
 * data was sent. 1005 is a close frame without a code, which plain WebSocket servers send for a
 * normal end. Anything else (1001 "going away" included) may have cut data in flight: reset.
 */
export const NORMAL_CLOSES = new Set([1000, 1005]);

/** The error for a close that was not a normal end: 1001 and 1006 say the stream was cut. */
export function peerCloseError(code: number, reason: Buffer): TunnelError {
  // Redacted before it is cut, so a secret echoed by the peer cannot survive as a fragment.
  const text = reason.length > 0 ? `: ${redact(reason.toString('utf8')).slice(0, 120)}` : '';
  if (code === 1006) return new TunnelError(ErrorCodes.REMOTE_CLOSED, 'The tunnel connection dropped without a close frame (1006)');
  if (code === 1001) {
    return new TunnelError(ErrorCodes.REMOTE_CLOSED, `The tunnel was closed by the peer with code 1001 (going away${text}) before the connection ended; it was cut, not completed`);
  }
  return new TunnelError(ErrorCodes.REMOTE_CLOSED, `The tunnel was closed by the peer with code ${code}${text}`);
}

/** The error for a failed WebSocket: a protocol violation by the peer, or a broken connection. */
export function webSocketError(err: Error & { code?: string }): TunnelError {
  const oversized = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
  const protocol = err.code !== undefined && err.code.startsWith('WS_ERR_');
  return protocol
    ? new TunnelError(ErrorCodes.PROTOCOL, oversized ? 'The peer sent a frame larger than the maximum payload' : `The peer broke the WebSocket protocol (${err.message})`, { detail: err.message })
    : new TunnelError(ErrorCodes.REMOTE_CLOSED, `The tunnel connection failed (${err.code ?? err.message})`, { detail: err.message });
}

/** The error for a failed byte stream: a reset by the program at its end, or something unexpected. */
export function streamError(err: NodeJS.ErrnoException): TunnelError {
  const code = err.code === 'ECONNRESET' || err.code === 'EPIPE' ? ErrorCodes.LOCAL_RESET : ErrorCodes.INTERNAL;
  return new TunnelError(code, `The connection was reset (${err.code ?? err.message})`, { detail: err.message });
}
