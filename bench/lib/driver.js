// The measurements, run from the driver (this process) through a relay's entry port to the target.
import net from 'node:net';
import { once } from 'node:events';
import { cpuSeconds, percentile, sleep } from './proc.js';
import { readSlowly, writeBytes } from './target.js';

const GiB = 1024 ** 3;
const MODE = { up: Buffer.from('U'), down: Buffer.from('D'), echo: Buffer.from('E'), slow: Buffer.from('S') };

export async function connectTo(port) {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  socket.on('error', () => {});
  await Promise.race([
    once(socket, 'connect'),
    once(socket, 'close').then(() => {
      throw new Error(`connection to ${port} closed before it opened`);
    }),
  ]);
  return socket;
}

/** Rejects if `promise` takes longer than `ms` (a stuck relay must not hang the bench). */
export function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
    }),
  ]);
}

/** Resolves once `count` bytes arrived on `socket` (counting only, nothing kept). */
function receive(socket, count) {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (chunk) => {
      got += chunk.length;
      if (got >= count) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve();
      }
    };
    const onClose = () => reject(new Error(`connection closed after ${got} of ${count} bytes`));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** CPU seconds of the relay's client process (null for direct TCP), read after socat reaps its fork. */
async function clientCpu(pair) {
  if (pair.clientPid === undefined) return null;
  await sleep(pair.name.includes('socat') ? 200 : 20);
  return cpuSeconds(pair.clientPid);
}

/** `bytes` from the driver to the target; MB/s and the client's CPU seconds per GiB. */
export async function throughputUp(pair, target, bytes) {
  const cpu0 = await clientCpu(pair);
  const sunk = target.expect(bytes);
  const t0 = performance.now();
  const socket = await connectTo(pair.entryPort);
  socket.write(MODE.up);
  await within(Promise.all([writeBytes(socket, bytes), sunk]), 120_000, `upload through ${pair.name}`);
  const seconds = (performance.now() - t0) / 1000;
  socket.destroy();
  const cpu1 = await clientCpu(pair);
  return { mbps: bytes / 1e6 / seconds, cpuPerGiB: cpu0 === null ? null : (cpu1 - cpu0) / (bytes / GiB) };
}

/** `bytes` from the target to the driver. */
export async function throughputDown(pair, target, bytes) {
  const cpu0 = await clientCpu(pair);
  target.state.downBytes = bytes;
  const t0 = performance.now();
  const socket = await connectTo(pair.entryPort);
  const got = receive(socket, bytes);
  socket.write(MODE.down);
  await within(got, 120_000, `download through ${pair.name}`);
  const seconds = (performance.now() - t0) / 1000;
  socket.destroy();
  const cpu1 = await clientCpu(pair);
  return { mbps: bytes / 1e6 / seconds, cpuPerGiB: cpu0 === null ? null : (cpu1 - cpu0) / (bytes / GiB) };
}

/**
 * 32 MiB each way, unmeasured: a fresh Node process spends its first transfer compiling the hot
 * path (a few hundred ms of CPU), which is not a cost per byte.
 */
export async function warmUp(pair, target) {
  await throughputUp(pair, target, 32 * 1024 * 1024);
  await throughputDown(pair, target, 32 * 1024 * 1024);
}

/** Mean round trip of `n` one-byte ping-pongs on one connection, µs. */
export async function pingPong(pair, n) {
  const socket = await connectTo(pair.entryPort);
  socket.write(MODE.echo);
  await receive(socket, 1);
  // Warm up the path (JIT, buffers) before timing.
  const rounds = (count) =>
    new Promise((resolve, reject) => {
      let left = count;
      const onData = () => {
        if (--left === 0) {
          socket.off('data', onData);
          resolve();
        } else socket.write(MODE.echo);
      };
      socket.on('data', onData);
      socket.once('close', reject);
      socket.write(MODE.echo);
    });
  await rounds(Math.min(1000, n));
  const t0 = performance.now();
  await within(rounds(n), 120_000, `ping-pong through ${pair.name}`);
  const us = ((performance.now() - t0) * 1000) / n;
  socket.destroy();
  return us;
}

/** One new connection with a one-byte echo, ms from connect() to the echo. */
export async function oneConnection(port) {
  const t0 = performance.now();
  const socket = await connectTo(port);
  const got = receive(socket, 1);
  socket.write(MODE.echo);
  await got;
  const ms = performance.now() - t0;
  socket.destroy();
  return ms;
}

/** `n` sequential new connections, each with a one-byte echo: p50 and p99 in ms. */
export async function sequentialConnections(pair, n) {
  for (let i = 0; i < 20; i += 1) await oneConnection(pair.entryPort);
  const times = [];
  for (let i = 0; i < n; i += 1) times.push(await within(oneConnection(pair.entryPort), 30_000, `connection through ${pair.name}`));
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** Opens `n` connections (each proven open by a one-byte echo) and keeps them; returns the sockets. */
export async function holdConnections(port, n, batch = 50) {
  const held = [];
  for (let i = 0; i < n; i += batch) {
    const group = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const socket = await connectTo(port);
        const got = receive(socket, 1);
        socket.write(MODE.echo);
        await within(got, 30_000, 'held connection');
        return socket;
      }),
    );
    held.push(...group);
  }
  return held;
}

/** Fast remote source, local reader taking `rate` B/s. */
export async function slowLocalReader(pair, target, bytes, rate) {
  target.state.downBytes = bytes;
  const socket = await connectTo(pair.entryPort);
  const done = new Promise((resolve, reject) => {
    readSlowly(socket, rate, (n) => n >= bytes && resolve());
    socket.once('close', () => reject(new Error('slow reader: connection closed early')));
  });
  socket.write(MODE.down);
  await within(done, (bytes / rate) * 1000 * 2 + 30_000, `slow local reader through ${pair.name}`);
  socket.destroy();
}

/** Fast local writer, remote reader taking `rate` B/s. */
export async function slowRemoteReader(pair, target, bytes, rate) {
  target.state.slowRate = rate;
  const sunk = target.expect(bytes);
  const socket = await connectTo(pair.entryPort);
  socket.write(MODE.slow);
  await within(Promise.all([writeBytes(socket, bytes), sunk]), (bytes / rate) * 1000 * 2 + 30_000, `slow remote reader through ${pair.name}`);
  socket.destroy();
}
