import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';

/**
 * Calls `listener(code, reason)` as soon as the peer's close frame has been parsed, after every
 * data frame before it. Returns false when that cannot be observed.
 *
 * Why a ws internal: ws emits 'close' only once the closing handshake is done and the TCP
 * connection has closed, one round trip after the peer's close frame arrived (issue 9). Its
 * Receiver (`ws._receiver`, ws 8) emits 'conclude' the moment the frame is read, which is when the
 * local program can be given its EOF. The hook is guarded twice: if a ws upgrade renames or drops
 * it, this returns false and the relay falls back to 'close' (later, still correct), and
 * test/eof.test.js fails because the EOF then arrives only after the TCP close.
 */
export function onCloseFrame(ws: WebSocket, listener: (code: number, reason: Buffer) => void): boolean {
  const receiver = (ws as unknown as { _receiver?: unknown })._receiver;
  if (!(receiver instanceof EventEmitter)) return false;
  receiver.on('conclude', (code: unknown, reason: unknown) => {
    if (typeof code === 'number') listener(code, Buffer.isBuffer(reason) ? reason : Buffer.alloc(0));
  });
  return true;
}
