// Backpressure end to end (issue 3, behaviour 1): a stalled reader on either side stalls the
// producer on the other, through the CLI and the reference server. Memory figures are the
// benchmark's job; these tests check the mechanism, without timing assertions.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, startCli, eventually, randomBytes, stopCleanly } from './helpers/index.js';
import { startService, within } from './helpers/faults.js';

const MiB = 1024 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TOTAL = 256 * MiB;
const CHUNK = randomBytes(64 * 1024);
// Everything the path may hold while stalled: kernel buffers on each of the three hops plus each
// relay's high-water mark. Far below the 256 MiB the producer would write without backpressure.
const STALLED_BOUND = 64 * MiB;

/** Writes TOTAL bytes as fast as `socket` accepts them, then ends; `state.written` counts accepted bytes. */
function produce(socket) {
  const state = { written: 0 };
  const pump = () => {
    while (state.written < TOTAL) {
      state.written += CHUNK.length;
      if (!socket.write(CHUNK)) return void socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
  return state;
}

/** Resolves once `read()` has stopped changing for `quietMs` (the producer is stalled). */
async function stalled(read, quietMs = 500) {
  let last = read();
  let since = Date.now();
  await eventually(
    () => {
      const now = read();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
      return Date.now() - since >= quietMs;
    },
    { timeoutMs: 20_000, intervalMs: 50, what: 'the producer to stall' },
  );
  return last;
}

/** Counts bytes until the socket ends; resolves with the count. */
function drain(socket) {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    socket.on('data', (d) => (bytes += d.length));
    socket.on('end', () => resolve(bytes));
    socket.on('error', reject);
    socket.resume();
  });
}

test('backpressure: a paused local reader stalls the remote producer (and keepalive leaves it alone)', async () => {
  let producer;
  const service = await startService((s) => (producer = produce(s)));
  const server = await startServer();
  // Keepalive far shorter than the pause: a reader that holds the tunnel paused is not a dead peer.
  const cli = await startCli(['--keepalive', '0.5', '--proxy-url', server.url, 'sbx-bp', `:${service.port}`]);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    let read = 0;
    await new Promise((resolve) => {
      const onData = (d) => {
        read += d.length;
        if (read < MiB) return;
        socket.off('data', onData);
        socket.pause();
        resolve();
      };
      socket.on('data', onData);
    });
    const stalledAt = await stalled(() => producer.written);
    await sleep(1500);
    assert.ok(producer.written < STALLED_BOUND, `the producer wrote ${(producer.written / MiB).toFixed(1)} MiB while the reader was paused`);
    assert.equal(producer.written, stalledAt, 'still stalled');
    const rest = await within(drain(socket), 60_000, 'the rest of the transfer');
    assert.equal(read + rest, TOTAL);
    assert.ok(!cli.events.some((e) => e.event === 'error'), JSON.stringify(cli.events.filter((e) => e.event === 'error')));
  } finally {
    await stopCleanly(cli, server, service);
  }
});

test('backpressure: a remote that does not read stalls a fast local writer', async () => {
  let target;
  const service = await startService((s) => {
    s.pause();
    target = s;
  });
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-bp', `:${service.port}`]);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const writer = produce(socket);
    const stalledAt = await stalled(() => writer.written);
    await sleep(1500);
    assert.ok(writer.written < STALLED_BOUND, `the local writer got ${(writer.written / MiB).toFixed(1)} MiB accepted while the remote read nothing`);
    assert.equal(writer.written, stalledAt, 'still stalled');
    const got = await within(drain(target), 60_000, 'the rest of the transfer');
    assert.equal(got, TOTAL);
  } finally {
    await stopCleanly(cli, server, service);
  }
});
