import type { Duplex } from 'node:stream';

const corked = new WeakSet<Duplex>();

/**
 * Corks `stream` until the event loop's check phase, so everything written for the reads of one
 * poll goes out as one writev: fewer write syscalls per byte.
 */
export function corkForThisTurn(stream: Duplex | undefined): void {
  if (stream === undefined || corked.has(stream)) return;
  corked.add(stream);
  stream.cork();
  setImmediate(() => {
    corked.delete(stream);
    stream.uncork();
  });
}
