import type { Socket } from 'node:net';
import { MAX_CONTROL_LINE } from './protocol.js';

/**
 * Reads one newline-terminated line of at most MAX_CONTROL_LINE bytes from a socket, within
 * `timeoutMs`. Resolves undefined on a longer line, an early end, an error or the deadline, and
 * destroys the socket then: neither side of the control protocol waits on a peer that misbehaves.
 */
export function readLine(socket: Socket, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buffered = '';
    const finish = (line: string | undefined): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      socket.off('close', onEnd);
      if (line === undefined) socket.destroy();
      resolve(line);
    };
    const onData = (chunk: string): void => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl >= 0) finish(buffered.slice(0, nl));
      else if (buffered.length > MAX_CONTROL_LINE) finish(undefined);
    };
    const onEnd = (): void => finish(undefined);
    const timer = setTimeout(onEnd, timeoutMs);
    timer.unref();
    socket.setEncoding('utf8');
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onEnd);
    socket.on('close', onEnd);
  });
}
