// Fault tests (issue 3): a killed server, a resetting client, a blackholed server, an idle-timeout
// server, and a 1,000-connection soak. Every wait is bounded; bounds are generous, never tight.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { CANARY_KEY, PROC_SKIP, fdCount, startEcho, startServer, startCli, echoRoundTrip, eventually, randomBytes, sha256, stopCleanly } from './helpers/index.js';
import { openTunnel } from '../dist/index.js';
import { startServerProcess, killChild, startFlow, within, startBlackhole, closed, stderrLine } from './helpers/faults.js';
import { startRedis } from './helpers/services.js';

const MiB = 1024 * 1024;

test('killed reference server: local sockets close with a line naming the cause; the CLI keeps listening and works after a restart', async () => {
  const echo = await startEcho();
  let server = await startServerProcess(0);
  const serverPort = server.port;
  const cli = await startCli(['--proxy-url', server.url, 'sbx-kill', `:${echo.port}`]);
  try {
    const flows = [startFlow(cli.port), startFlow(cli.port), startFlow(cli.port)];
    await eventually(() => flows.every((f) => f.received > MiB), { timeoutMs: 15_000, what: 'data flowing through three tunnels' });
    const killedAt = Date.now();
    await killChild(server.child);
    await within(Promise.all(flows.map((f) => f.closed)), 10_000, 'local sockets closed after the server died');
    // Within ~1 s in practice; the bound is loose because the machine is shared.
    for (const f of flows) assert.ok(f.closedAt - killedAt < 5000, `local socket closed ${f.closedAt - killedAt} ms after the kill`);
    await eventually(() => cli.events.filter((e) => e.event === 'error').length >= 3, { timeoutMs: 5000, what: 'three error events' });
    for (const e of cli.events.filter((ev) => ev.event === 'error')) {
      assert.equal(e.code, 'TL_ERR_REMOTE_CLOSED');
      assert.equal(e.fatal, false);
    }
    await stderrLine(cli, /✖ .*sbx-kill:\d+: The tunnel connection (dropped|failed|was lost)/);
    assert.equal(cli.child.exitCode, null, 'the CLI keeps running');

    server = await startServerProcess(serverPort);
    const data = randomBytes(200_000);
    assert.equal(sha256(await within(echoRoundTrip(cli.port, data), 15_000, 'a round trip after the restart')), sha256(data));
  } finally {
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    await killChild(server.child);
    await echo.close();
  }
});

test('a local client that resets mid-transfer closes the WebSocket and the target socket', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const serverCloses = [];
  server.on('close', (e) => serverCloses.push(e));
  const cli = await startCli(['--proxy-url', server.url, 'sbx-reset', `:${echo.port}`]);
  try {
    const keep = startFlow(cli.port);
    const reset = startFlow(cli.port);
    await eventually(() => keep.received > MiB && reset.received > MiB && echo.sockets.size === 2, { timeoutMs: 15_000, what: 'two tunnels flowing' });
    const closesBefore = serverCloses.length; // the startup check's tunnel
    reset.socket.resetAndDestroy();
    await eventually(() => serverCloses.length === closesBefore + 1 && echo.sockets.size === 1, {
      timeoutMs: 10_000,
      what: `the reset tunnel closed on the server and at the target (closes ${JSON.stringify(serverCloses)}, targets ${echo.sockets.size})`,
    });
    assert.equal(server.activeTunnels, 1);
    assert.notEqual(serverCloses.at(-1).closeCode, 1000, 'a reset is not reported as a normal close');
    // The other tunnel is untouched.
    const before = keep.received;
    await eventually(() => keep.received > before + MiB, { timeoutMs: 10_000, what: 'the other tunnel still flowing' });
    assert.equal(keep.closedAt, 0);
    keep.socket.destroy();
    await eventually(() => echo.sockets.size === 0 && server.activeTunnels === 0, { timeoutMs: 10_000, what: 'all target sockets closed' });
  } finally {
    await stopCleanly(cli, server, echo);
  }
});

test('a blackholed server is torn down by keepalive with a clear line and the local socket closed', async () => {
  const hole = await startBlackhole();
  const cli = await startCli(['--keepalive', '1', '--proxy-url', hole.url, 'sbx-hole', ':5432']);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    await cli.waitFor((ev) => ev.some((e) => e.event === 'open'), 10_000, 'open');
    socket.write(randomBytes(1000));
    await within(closed(socket), 15_000, 'local socket closed by keepalive');
    const error = await cli.waitFor((ev) => ev.find((e) => e.event === 'error'), 5000, 'error event');
    assert.equal(error.code, 'TL_ERR_KEEPALIVE');
    await stderrLine(cli, /✖ .*sbx-hole:5432: The tunnel stopped answering/);
    assert.equal(cli.child.exitCode, null, 'the CLI keeps running');
  } finally {
    await stopCleanly(cli, hole);
  }
});

/** Sends a redis PING on `socket` and resolves with the reply line. */
function ping(socket) {
  const reply = new Promise((resolve, reject) => {
    const onData = (d) => {
      socket.off('error', reject);
      resolve(d.toString('latin1'));
    };
    socket.once('data', onData);
    socket.once('error', reject);
    socket.write('PING\r\n');
  });
  return within(reply, 10_000, 'a PONG');
}

test('an idle redis connection survives an idle-timeout server with --keepalive 1, and is closed without keepalive', async () => {
  const redis = await startRedis();
  const server = await startServer({ idleTimeoutMs: 3000 });
  const serverCloses = [];
  server.on('close', (e) => serverCloses.push(e));
  const kept = await startCli(['--keepalive', '1', '--proxy-url', server.url, 'sbx-idle', `:${redis.port}`]);
  const bare = await startCli(['--keepalive', '0', '--proxy-url', server.url, 'sbx-idle', `:${redis.port}`]);
  try {
    const a = net.connect(kept.port, '127.0.0.1');
    const b = net.connect(bare.port, '127.0.0.1');
    // The idle timeout cuts the tunnel (1001): the local connection is reset, not ended.
    b.on('error', () => {});
    const bClosed = closed(b);
    assert.equal(await ping(a), '+PONG\r\n');
    assert.equal(await ping(b), '+PONG\r\n');
    const idleStart = Date.now();
    // Control: without keepalive the server's idle timeout ends the tunnel.
    await within(bClosed, 12_000, 'the tunnel without keepalive closed by the idle server');
    await eventually(() => serverCloses.some((e) => /idle timeout/.test(e.reason)), { timeoutMs: 5000, what: 'the server closing the idle tunnel' });
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - idleStart))));
    assert.equal(a.destroyed, false, 'the kept-alive connection is still open after 10 s idle');
    assert.equal(await ping(a), '+PONG\r\n');
    a.destroy();
  } finally {
    for (const cli of [kept, bare]) {
      const r = await cli.stop();
      assert.equal(r.code, 0, r.stderr);
    }
    await server.close();
    await redis.stop();
  }
});


/** A full garbage collection, so RSS reflects live memory. */
const collectGarbage = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc');
})();

/** Memory the program still references: the JS heap and Buffers. */
function liveBytes() {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const mib = (n) => (n / MiB).toFixed(0);

async function settledRss() {
  for (let i = 0; i < 3; i += 1) {
    collectGarbage();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage().rss;
}

/**
 * One soak connection: sends its 1 MiB, hashes what comes back, ends once all of it has, and
 * resolves with { sent, received } digests after the socket closed.
 */
function soakConnection(socket, data) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let received = 0;
    socket.on('error', reject);
    socket.on('data', (d) => {
      hash.update(d);
      received += d.length;
      if (received === data.length) socket.end();
    });
    socket.on('close', () => resolve({ expected: sha256(data), got: hash.digest('hex'), received }));
    socket.write(data);
  });
}

test('soak: 1,000 concurrent connections × 1 MiB random each way, SHA-256 matched; descriptors and RSS back near baseline', async (t) => {
  const N = 1000;
  const echo = await startEcho();
  const server = await startServer({ maxConnections: 2 * N });
  const tunnel = await openTunnel({ sandbox: 'sbx-soak', ports: `:${echo.port}`, credentials: { apiKey: CANARY_KEY }, proxyUrl: server.url, maxConnections: N });
  const port = tunnel.addresses[0].port;
  const pool = randomBytes(8 * MiB);
  const started = Date.now();
  try {
    // Without /proc (not Linux) the descriptor count is left out; the rest still runs.
    const baseFds = PROC_SKIP ? 0 : fdCount();
    const baseRss = await settledRss();
    const baseLive = liveBytes();
    // Connect in batches so the listen backlog never overflows (a dropped SYN costs a 1 s retry),
    // then start sending only once all N tunnels are open at the same time.
    const sockets = [];
    for (let i = 0; i < N; i += 100) {
      const batch = Array.from({ length: Math.min(100, N - i) }, () => net.connect(port, '127.0.0.1'));
      await within(Promise.all(batch.map((s) => once(s, 'connect'))), 30_000, `connections ${i} to ${i + batch.length} connected`);
      sockets.push(...batch);
    }
    await eventually(() => server.activeTunnels === N && tunnel.stats.active === N, { timeoutMs: 30_000, what: `${N} tunnels open at once (server ${server.activeTunnels}, client ${tunnel.stats.active})` });
    const opened = Date.now();
    // Collect garbage as the transfer goes: V8 frees spent transfer buffers lazily and the allocator
    // keeps its high-water mark, so without this RSS afterwards would measure GC timing, not leaks.
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      collectGarbage();
    }, 250);
    let done = 0;
    const transfers = Promise.all(
      sockets.map((s) => {
        const offset = Math.floor(Math.random() * (pool.length - MiB));
        return soakConnection(s, pool.subarray(offset, offset + MiB)).finally(() => (done += 1));
      }),
    );
    const results = await within(transfers, 120_000, 'every transfer').catch((err) => {
      const stuck = sockets.filter((s) => !s.closed).map((s) => ({ port: s.localPort, read: s.bytesRead, written: s.bytesWritten }));
      err.message += `: ${done} of ${N} done; client ${JSON.stringify(tunnel.stats)}, server ${server.activeTunnels} open; stuck ${JSON.stringify(stuck.slice(0, 5))}`;
      throw err;
    });
    clearInterval(sampler);
    const transferred = Date.now();
    for (const r of results) {
      assert.equal(r.received, MiB);
      assert.equal(r.got, r.expected);
    }
    await eventually(() => server.activeTunnels === 0 && tunnel.stats.active === 0 && echo.sockets.size === 0, { timeoutMs: 20_000, what: 'every tunnel closed' });
    assert.deepEqual(tunnel.stats.errors, {});
    let fds = 0;
    if (!PROC_SKIP) await eventually(() => (fds = fdCount()) <= baseFds + 8, { timeoutMs: 5000, what: `descriptors back near ${baseFds} (now ${fds})` });
    const rss = await settledRss();
    const live = liveBytes();
    t.diagnostic(`open ${opened - started} ms, transfer+linger ${transferred - opened} ms; fds ${baseFds} -> ${fds}; RSS ${mib(baseRss)} -> peak ${mib(peakRss)} -> ${mib(rss)} MiB; live JS+buffers ${mib(baseLive)} -> ${mib(live)} MiB`);
    // Live memory must return: nothing per connection may stay referenced.
    assert.ok(live < baseLive + 32 * MiB, `live memory ${mib(live)} MiB after the soak, ${mib(baseLive)} MiB before`);
    // RSS keeps what the allocator does not hand back to the system, hence the generous bound. When
    // the kernel runs short of TCP memory (other heavy tests at the same time), data waits in the
    // relays' bounded buffers instead, the peak is far higher and RSS stays near it without any
    // leak: the live-memory check above is the one that finds leaks.
    if (peakRss < baseRss + 384 * MiB) assert.ok(rss < baseRss + 256 * MiB, `RSS ${mib(rss)} MiB after the soak, ${mib(baseRss)} MiB before`);
    else t.diagnostic(`RSS bound not applied: the transfer peaked at ${mib(peakRss)} MiB (kernel TCP memory pressure)`);
  } finally {
    await within(tunnel.close(), 10_000, 'tunnel.close()');
    await within(server.close(), 10_000, 'server.close()');
    await echo.close();
  }
});
