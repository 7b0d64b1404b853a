// Bulk and concurrent data through the real client and the reference server: every byte must arrive,
// in order, in each direction (checked with SHA-256), in-process and through the built CLI.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { openTunnel } from '../dist/index.js';
import { CANARY_KEY, echoRoundTrip, eventually, listen, randomBytes, sha256, startCli, startEcho, startServer, stopCleanly } from './helpers/index.js';

const BIG = 64 * 1024 * 1024;
const CONCURRENT = 50;
const EACH = 256 * 1024;

/** A service that hashes exactly `size` bytes, then answers with the hex SHA-256 and closes. */
async function startHashSink(size) {
  const server = net.createServer((s) => {
    const hash = createHash('sha256');
    let n = 0;
    s.on('error', () => {});
    s.on('data', (d) => {
      n += d.length;
      hash.update(d);
      if (n === size) s.end(hash.digest('hex'));
      else if (n > size) s.destroy();
    });
  });
  const port = await listen(server);
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}

/** A service that sends `data` to each client and closes. */
async function startSender(data) {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end(data);
  });
  const port = await listen(server);
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}

/** Reads everything until the peer closes. */
async function readAll(socket) {
  const chunks = [];
  socket.on('data', (d) => chunks.push(d));
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

function tunnelTo(server, remotePort, extra = {}) {
  return openTunnel({ sandbox: 'sbx-1', ports: `:${remotePort}`, credentials: { apiKey: CANARY_KEY }, proxyUrl: server.url, ...extra });
}

/** Resolves with the next `close` event of the handle. */
function nextClose(handle) {
  return once(handle, 'close').then(([e]) => e);
}

test('64 MiB upload through openTunnel and the reference server arrives intact', { timeout: 60_000 }, async () => {
  const data = randomBytes(BIG);
  const sink = await startHashSink(BIG);
  const server = await startServer();
  const tunnel = await tunnelTo(server, sink.port);
  try {
    const closed = nextClose(tunnel);
    const socket = net.connect(tunnel.addresses[0].port, '127.0.0.1');
    socket.write(data);
    const answer = await readAll(socket);
    assert.equal(answer.toString('utf8'), sha256(data));
    const e = await closed;
    assert.equal(e.error, undefined, e.error?.message);
    assert.equal(e.bytesSent, BIG);
    assert.equal(e.bytesReceived, 64);
    assert.equal(e.opened, true);
  } finally {
    await tunnel.close();
    await server.close();
    await sink.close();
  }
});

test('64 MiB download through openTunnel and the reference server arrives intact', { timeout: 60_000 }, async () => {
  const data = randomBytes(BIG);
  const sender = await startSender(data);
  const server = await startServer();
  const tunnel = await tunnelTo(server, sender.port);
  try {
    const closed = nextClose(tunnel);
    const socket = net.connect(tunnel.addresses[0].port, '127.0.0.1');
    const got = await readAll(socket);
    assert.equal(got.length, BIG);
    assert.equal(sha256(got), sha256(data));
    const e = await closed;
    assert.equal(e.error, undefined, e.error?.message);
    assert.equal(e.bytesReceived, BIG);
    assert.equal(e.bytesSent, 0);
  } finally {
    await tunnel.close();
    await server.close();
    await sender.close();
  }
});

test(`${CONCURRENT} concurrent connections through the echo service are each intact`, { timeout: 60_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const tunnel = await tunnelTo(server, echo.port);
  const closes = [];
  tunnel.on('close', (e) => closes.push(e));
  try {
    const port = tunnel.addresses[0].port;
    const payloads = Array.from({ length: CONCURRENT }, () => randomBytes(EACH));
    // Half over IPv4, half over IPv6 when the machine has ::1, so both listeners carry traffic.
    const v6 = tunnel.addresses.find((a) => a.family === 'IPv6');
    const results = await Promise.all(payloads.map((p, i) => echoRoundTrip(port, p, { host: v6 && i % 2 ? '::1' : '127.0.0.1' })));
    results.forEach((back, i) => {
      assert.equal(back.length, EACH, `connection ${i} length`);
      assert.equal(sha256(back), sha256(payloads[i]), `connection ${i} checksum`);
    });
    await eventually(() => closes.length === CONCURRENT && server.activeTunnels === 0, { timeoutMs: 15_000, what: 'all tunnels closed' });
    assert.equal(tunnel.stats.connections, CONCURRENT);
    assert.equal(tunnel.stats.active, 0);
    assert.equal(new Set(closes.map((e) => e.id)).size, CONCURRENT);
    for (const e of closes) {
      assert.equal(e.opened, true);
      assert.equal(e.bytesSent, EACH);
    }
  } finally {
    await tunnel.close();
    await server.close();
    await echo.close();
  }
});

test('64 MiB each way through the built CLI as a child process', { timeout: 60_000 }, async () => {
  const data = randomBytes(BIG);
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-1', `:${echo.port}`]);
  try {
    const back = await echoRoundTrip(cli.port, data);
    assert.equal(back.length, BIG);
    assert.equal(sha256(back), sha256(data));
    const closed = await cli.waitFor((ev) => ev.find((e) => e.event === 'close'), 15_000, 'close event');
    assert.equal(closed.bytesSent, BIG);
    assert.equal(closed.code, undefined);
  } finally {
    await stopCleanly(cli, server, echo);
  }
});
