import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** Answers an upgrade request with a JSON error body and closes the socket. */
export function replyJson(socket: Duplex, status: number, error: string, code?: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(code === undefined ? { error } : { error, code });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  // Do not wait on a client that never reads its answer.
  setTimeout(() => socket.destroy(), 2000).unref();
}
