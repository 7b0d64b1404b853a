import type { Socket } from 'node:net';

/**
 * Calls `onLeave` if a waiting local client goes away: a reset, or an end of input with nothing
 * sent before it. A paused socket reads nothing, so neither would ever be seen: this reads into the
 * socket's own buffer (bounded by its high-water mark; the tunnel gets every byte later) without
 * consuming anything. A client that sent data and then half-closed still waits for its answer.
 * Returns a function that stops watching and leaves the socket paused again.
 */
export function watchWhileWaiting(socket: Socket, onLeave: () => void): () => void {
  let watching = true;
  const leave = (): void => {
    if (watching) onLeave();
  };
  // read(0) consumes nothing; after an end of input with an empty buffer it lets 'end' fire.
  const onReadable = (): void => void socket.read(0);
  const ignore = (): void => {};
  socket.on('readable', onReadable);
  socket.on('end', leave);
  socket.on('error', ignore);
  socket.on('close', leave);
  return () => {
    if (!watching) return;
    watching = false;
    socket.off('readable', onReadable);
    socket.off('end', leave);
    socket.off('error', ignore);
    socket.off('close', leave);
  };
}
