// The service behind every relay (the "port inside the sandbox"). The first byte a connection
// sends picks what it does, so one port serves every measurement:
//   U  sink: counts what follows              D  source: sends `downBytes` as fast as it is taken
//   S  slow sink: reads at `slowRate` B/s     E  echo: sends everything back, the E included
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';

/** One random MiB, written over and over (no relay compresses, but no pattern either). */
export const PAYLOAD = randomBytes(1024 * 1024);

/** Writes `total` bytes of PAYLOAD to `socket`, waiting for 'drain' whenever it is full. */
export async function writeBytes(socket, total) {
  let left = total;
  while (left > 0 && !socket.destroyed) {
    const chunk = left >= PAYLOAD.length ? PAYLOAD : PAYLOAD.subarray(0, left);
    left -= chunk.length;
    if (!socket.write(chunk)) await drained(socket);
  }
}

/** Resolves on 'drain' or 'close', whichever comes first, and leaves no listener behind. */
function drained(socket) {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/**
 * Reads from `socket` at no more than `rate` bytes per second, pausing it between reads so the
 * kernel buffers fill and the sender feels backpressure. Calls onBytes(count) after each chunk.
 */
export function readSlowly(socket, rate, onBytes) {
  const started = performance.now();
  let got = 0;
  let timer;
  socket.on('data', (chunk) => {
    got += chunk.length;
    onBytes(got);
    const wait = started + (got / rate) * 1000 - performance.now();
    if (wait > 1) {
      socket.pause();
      timer = setTimeout(() => socket.resume(), wait);
    }
  });
  socket.once('close', () => clearTimeout(timer));
}

export async function startTarget() {
  const state = { downBytes: 0, slowRate: 40e6, waiter: undefined, connections: 0 };
  const sockets = new Set();
  const sunk = (n) => {
    const w = state.waiter;
    if (w && n >= w.bytes) {
      state.waiter = undefined;
      w.resolve();
    }
  };
  const server = net.createServer({ noDelay: true }, (socket) => {
    state.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', (first) => {
      const mode = String.fromCharCode(first[0]);
      const rest = first.length - 1;
      if (mode === 'E') {
        socket.write(first);
        socket.pipe(socket);
      } else if (mode === 'U') {
        let got = rest;
        sunk(got);
        socket.on('data', (chunk) => sunk((got += chunk.length)));
      } else if (mode === 'S') {
        readSlowly(socket, state.slowRate, (n) => sunk(n + rest));
      } else if (mode === 'D') {
        void writeBytes(socket, state.downBytes);
      } else {
        socket.destroy();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: server.address().port,
    state,
    /** Resolves once the sink of the current connection has counted `bytes` (mode byte excluded). */
    expect(bytes) {
      return new Promise((resolve) => {
        state.waiter = { bytes, resolve };
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
