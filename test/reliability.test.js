// Reliability (issue 3): half-close and --linger, flushing on close, retried upgrades,
// --max-connections, and stopping with transfers in flight. Backpressure: backpressure.test.js.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { startEcho, startServer, startCli, runCli, echoRoundTrip, eventually, randomBytes, sha256, stopCleanly } from './helpers/index.js';
import { startFlow, within, startBlackhole, startFlakyProxy, startService, closed, stderrLine } from './helpers/faults.js';

const MiB = 1024 * 1024;
// Large enough that the last megabytes are still in flight when the sender closes.
const PAYLOAD = 64 * MiB;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Collects everything a socket receives; `done` resolves at close with { data, ended, error }. */
function collect(socket) {
  const chunks = [];
  const state = { ended: false, error: undefined, bytes: 0 };
  socket.on('data', (d) => {
    chunks.push(d);
    state.bytes += d.length;
  });
  socket.on('end', () => (state.ended = true));
  socket.on('error', (err) => (state.error = err));
  state.done = closed(socket).then(() => ({ data: Buffer.concat(chunks), ended: state.ended, error: state.error }));
  return state;
}

test('half-close: after the local client ends, data keeps arriving while the tunnel is not idle for --linger, then a normal close', async () => {
  // The remote sends a piece every 0.5 s for 3 s: longer than the 2 s linger in total, but never
  // idle for 2 s, so every piece must arrive (linger is an idle timer, refreshed by data).
  const pieces = 7;
  const service = await startService((s) => {
    let n = 0;
    const timer = setInterval(() => {
      if (s.destroyed) return clearInterval(timer);
      s.write(`piece ${n}\n`);
      if (++n === pieces) clearInterval(timer); // then silent, but never closes
    }, 500);
    s.on('close', () => clearInterval(timer));
    s.resume();
    s.on('end', () => s.end());
  });
  const server = await startServer();
  const cli = await startCli(['--linger', '2', '--proxy-url', server.url, 'sbx-linger', `:${service.port}`]);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    const got = collect(socket);
    socket.end('bye\n'); // half-close at once
    const { data, ended, error } = await within(got.done, 20_000, 'the lingering tunnel closed');
    assert.equal(error, undefined, 'a normal close, not a reset');
    assert.equal(ended, true);
    assert.equal(data.toString(), Array.from({ length: pieces }, (_, i) => `piece ${i}\n`).join(''));
    await eventually(() => service.sockets.size === 0 && server.activeTunnels === 0, { timeoutMs: 10_000, what: 'the remote side closed too' });
    const close = await cli.waitFor((ev) => ev.find((e) => e.event === 'close'), 5000, 'close event');
    assert.equal(close.code, undefined, JSON.stringify(close));
  } finally {
    await stopCleanly(cli, server, service);
  }
});

test('half-close: when the remote closes, the local socket ends without waiting out a long --linger', async () => {
  const service = await startService((s) => setTimeout(() => s.end('last words\n'), 500));
  const server = await startServer({ lingerMs: 100 });
  const cli = await startCli(['--linger', '60', '--proxy-url', server.url, 'sbx-linger', `:${service.port}`]);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    const got = collect(socket);
    socket.end();
    // A 60 s linger would outlast this bound: the remote's close must end the tunnel.
    const { data, ended, error } = await within(got.done, 20_000, 'the local socket ended after the remote closed');
    assert.equal(error, undefined);
    assert.equal(ended, true);
    assert.equal(data.toString(), 'last words\n');
  } finally {
    await stopCleanly(cli, server, service);
  }
});

/**
 * Counts and hashes what `socket` receives; after `pauseAfter` bytes it stops reading for `pauseMs`
 * (a slow reader near the end of a transfer, when the sender has already closed).
 */
function slowTailReader(socket, pauseAfter, pauseMs) {
  const hash = createHash('sha256');
  const state = { bytes: 0, ended: false, error: undefined, digest: undefined };
  let paused = false;
  socket.on('data', (d) => {
    hash.update(d);
    state.bytes += d.length;
    if (!paused && state.bytes >= pauseAfter) {
      paused = true;
      socket.pause();
      setTimeout(() => socket.resume(), pauseMs);
    }
  });
  socket.on('end', () => {
    state.ended = true;
    state.digest = hash.digest('hex');
  });
  socket.on('error', (err) => (state.error = err));
  return state;
}

// The sender closes while the last megabytes are still in flight and the reader stops for longer
// than linger and close grace together: the close must wait for the data, not cut it off.
const TAIL = 12 * MiB;
const TAIL_PAUSE_MS = 6000;

test('a remote close ends the local socket only after all its data is delivered, even to a slow reader', async () => {
  const payload = randomBytes(PAYLOAD);
  const service = await startService((s) => s.end(payload));
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-flush', `:${service.port}`]);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    const got = slowTailReader(socket, PAYLOAD - TAIL, TAIL_PAUSE_MS);
    socket.end();
    await within(closed(socket), 30_000, 'the local socket closed');
    assert.equal(got.error, undefined, 'a normal close, not a reset');
    assert.equal(got.ended, true);
    assert.equal(got.bytes, PAYLOAD);
    assert.equal(got.digest, sha256(payload));
  } finally {
    await stopCleanly(cli, server, service);
  }
});

test('an upload followed by a half-close reaches a slow remote reader in full', async () => {
  const payload = randomBytes(PAYLOAD);
  let received;
  const service = await startService((s) => {
    received = slowTailReader(s, PAYLOAD - TAIL, TAIL_PAUSE_MS);
    s.on('end', () => s.end());
  });
  const server = await startServer();
  const serverCloses = [];
  server.on('close', (e) => serverCloses.push(e));
  const cli = await startCli(['--proxy-url', server.url, 'sbx-flush', `:${service.port}`]);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    const got = collect(socket);
    socket.end(payload);
    const { error } = await within(got.done, 30_000, 'the local socket closed');
    assert.equal(error, undefined, `a normal close, not a reset: ${cli.stderr()} ${JSON.stringify(serverCloses)}`);
    await eventually(() => received?.ended, { timeoutMs: 10_000, what: 'the remote read to the end' });
    assert.equal(received.error, undefined);
    assert.equal(received.bytes, PAYLOAD);
    assert.equal(received.digest, sha256(payload));
    assert.equal(serverCloses.at(-1).closeCode, 1000);
  } finally {
    await stopCleanly(cli, server, service);
  }
});

test('503 and 429 answers to the upgrade are retried inside --connect-timeout, each retry shown with --verbose', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const flaky = await startFlakyProxy({ statuses: [503, 429, 503], upstreamPort: server.port });
  const cli = await startCli(['--verbose', '--no-check', '--connect-timeout', '30', '--proxy-url', flaky.url, 'sbx-retry', `:${echo.port}`]);
  try {
    const data = randomBytes(100_000);
    assert.equal(sha256(await echoRoundTrip(cli.port, data)), sha256(data));
    assert.deepEqual(flaky.answered, [503, 429, 503, 101]);
    await stderrLine(cli, / retry 3 in \d+ ms/);
    const retries = cli.stderr().split('\n').filter((l) => / retry \d+ in \d+ ms/.test(l));
    assert.equal(retries.length, 3, cli.stderr());
    assert.match(retries[0], /answered 503 .*retry 1 in/);
    assert.match(retries[1], /answered 429 .*retry 2 in/);
    assert.match(retries[2], /answered 503 .*retry 3 in/);
    assert.ok(!cli.events.some((e) => e.event === 'error'), 'a retried upgrade is not an error');
  } finally {
    await stopCleanly(cli, flaky, server, echo);
  }
});

test('a 503 that never ends fails the connection with a clear error once --connect-timeout has passed', async () => {
  const flaky = await startFlakyProxy({ forever: 503 });
  const cli = await startCli(['--verbose', '--no-check', '--connect-timeout', '1.5', '--proxy-url', flaky.url, 'sbx-retry', ':5432']);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    await within(closed(socket), 15_000, 'the waiting local socket closed');
    const error = await cli.waitFor((ev) => ev.find((e) => e.event === 'error'), 5000, 'error event');
    assert.equal(error.code, 'TL_ERR_PROXY_STATUS');
    assert.equal(error.fatal, false);
    assert.ok(flaky.answered.length >= 2, `retried (${flaky.answered.length} attempts)`);
    await stderrLine(cli, /✖ .*sbx-retry:5432: The sandbox proxy at 127\.0\.0\.1:\d+ answered 503 instead of opening the tunnel/);
    assert.equal(cli.child.exitCode, null, 'the CLI keeps listening');
  } finally {
    await stopCleanly(cli, flaky);
  }
});

test('transient answers during the startup check are retried too, each retry shown with --verbose', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const flaky = await startFlakyProxy({ statuses: [503, 429], upstreamPort: server.port });
  const cli = await startCli(['--verbose', '--connect-timeout', '30', '--proxy-url', flaky.url, 'sbx-retry', `:${echo.port}`]);
  try {
    // The line the spinner shows (a -v line without a terminal) says it retries, and why.
    const retries = cli.stderr().split('\n').filter((l) => /^Checking sandbox sbx-retry: retrying \(attempt \d+\) after: /.test(l));
    assert.equal(retries.length, 2, cli.stderr());
    assert.match(retries[0], /attempt 2\) after: .*answered 503/);
    assert.match(retries[1], /attempt 3\) after: .*answered 429/);
    const data = randomBytes(10_000);
    assert.equal(sha256(await echoRoundTrip(cli.port, data)), sha256(data));
  } finally {
    await stopCleanly(cli, flaky, server, echo);
  }
});

test('a 503 that never ends at startup exits with a clear error after --connect-timeout', async () => {
  const flaky = await startFlakyProxy({ forever: 503 });
  try {
    const r = await runCli(['--connect-timeout', '1', '--proxy-url', flaky.url, 'sbx-retry', '5432']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error The sandbox proxy at 127\.0\.0\.1:\d+ answered 503 instead of opening the tunnel/);
    assert.ok(flaky.answered.length >= 2, `retried (${flaky.answered.length} attempts)`);
  } finally {
    await flaky.close();
  }
});

/** Connects and resolves once connected; `reply` resolves with the first data. */
async function client(port) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const reply = new Promise((resolve) => socket.once('data', (d) => resolve(d.toString())));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, reply };
}

test('--max-connections 2 with 4 clients: the extras wait with a warning, and all 4 are served', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--max-connections', '2', '--proxy-url', server.url, 'sbx-max', `:${echo.port}`]);
  try {
    const first = [await client(cli.port), await client(cli.port)];
    first.forEach((c, i) => c.socket.write(`first ${i}`));
    assert.deepEqual(await Promise.all(first.map((c) => c.reply)), ['first 0', 'first 1']);
    const extra = [await client(cli.port), await client(cli.port)];
    extra.forEach((c, i) => c.socket.write(`extra ${i}`));
    const warning = await cli.waitFor((ev) => ev.find((e) => e.event === 'warning'), 10_000, 'warning');
    assert.equal(warning.code, 'TL_WARN_MAX_CONNECTIONS');
    await stderrLine(cli, /warning 2 tunnels are open \(--max-connections\); new connections wait/);
    await sleep(300);
    for (const c of extra) assert.equal(c.socket.destroyed, false, 'a waiting connection is not dropped');
    assert.equal(echo.sockets.size, 2, 'only two tunnels reach the service');
    first[0].socket.destroy();
    assert.equal(await extra[0].reply, 'extra 0');
    first[1].socket.destroy();
    assert.equal(await extra[1].reply, 'extra 1');
    for (const c of extra) c.socket.destroy();
    await eventually(() => echo.sockets.size === 0, { timeoutMs: 10_000, what: 'all tunnels closed' });
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'open').length === 4, 5000, 'four open events');
  } finally {
    await stopCleanly(cli, server, echo);
  }
});

test('SIGTERM with transfers in flight: 1001 close codes reach the server, exit 0 promptly, nothing left open', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const closes = [];
  server.on('close', (e) => closes.push(e));
  const cli = await startCli(['--proxy-url', server.url, 'sbx-stop', `:${echo.port}`]);
  try {
    const flows = [startFlow(cli.port), startFlow(cli.port), startFlow(cli.port)];
    await eventually(() => flows.every((f) => f.received > MiB) && server.activeTunnels === 3, { timeoutMs: 15_000, what: 'three transfers in flight' });
    const before = closes.length;
    const signalled = Date.now();
    const r = await within(cli.stop('SIGTERM'), 15_000, 'the CLI exited');
    const exitedAfter = Date.now() - signalled;
    assert.equal(r.code, 0, r.stderr);
    // About 1 s at most in practice; the bound is loose because the machine is shared.
    assert.ok(exitedAfter < 5000, `exited ${exitedAfter} ms after SIGTERM`);
    assert.ok(r.events.some((e) => e.event === 'stopped'));
    await eventually(() => closes.length === before + 3 && server.activeTunnels === 0 && echo.sockets.size === 0, {
      timeoutMs: 10_000,
      what: `every tunnel closed on the server (${JSON.stringify(closes.slice(before))})`,
    });
    for (const e of closes.slice(before)) assert.equal(e.closeCode, 1001, JSON.stringify(e));
    await Promise.all(flows.map((f) => within(f.closed, 10_000, 'local socket closed')));
  } finally {
    await cli.stop('SIGKILL');
    await server.close();
    await echo.close();
  }
});

test('a second SIGINT while stopping exits at once with 130', async () => {
  // A blackholed server never answers the close handshake, so the first stop takes its full grace.
  const hole = await startBlackhole();
  const cli = await startCli(['--verbose', '--proxy-url', hole.url, 'sbx-stop', ':5432']);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    await cli.waitFor((ev) => ev.some((e) => e.event === 'open'), 10_000, 'open');
    cli.child.kill('SIGINT');
    await eventually(() => /SIGINT: closing 1 tunnel/.test(cli.stderr()), { timeoutMs: 5000, what: 'the first stop under way' });
    cli.child.kill('SIGINT');
    const r = await within(cli.result(), 10_000, 'the CLI exited');
    assert.equal(r.code, 130, r.stderr);
  } finally {
    await cli.stop('SIGKILL');
    await hole.close();
  }
});
