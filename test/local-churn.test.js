// The local side under churn: clients that connect and reset at once, or flood and then reset,
// 1,000 times. Afterwards no WebSocket, timer, socket or file descriptor may be left behind.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHook } from 'node:async_hooks';
import { openTunnel } from '../dist/index.js';
import { CANARY_KEY, PROC_SKIP, eventually, fdCount, randomBytes, startEcho, startServer } from './helpers/index.js';

const FLOOD = randomBytes(256 * 1024);

// Without /proc (not Linux) descriptors are not counted; sockets, handles and timers still are.
const openFds = () => (PROC_SKIP ? 0 : fdCount());

// Live timers, unref'd ones included (getActiveResourcesInfo() lists only those keeping the loop alive).
const liveTimers = new Set();
createHook({
  init: (id, type) => void (type === 'Timeout' && liveTimers.add(id)),
  destroy: (id) => void liveTimers.delete(id),
}).enable();

function timers() {
  return liveTimers.size;
}

/** One hostile local client. `mode`: reset at once, flood then reset, or flood, wait for data, reset. */
function churn(port, mode) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('close', resolve);
    socket.on('connect', () => {
      if (mode === 'reset') return socket.resetAndDestroy();
      socket.write(FLOOD);
      if (mode === 'flood-reset') return socket.resetAndDestroy();
      // Reset in the middle of the echo coming back, with the tunnel open and data in flight.
      socket.once('data', () => socket.resetAndDestroy());
    });
  });
}

test('1,000 connect-and-reset / flood-and-reset clients leave no WebSocket, timer, socket or fd behind', { timeout: 120_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const handle = await openTunnel({ sandbox: 'sbx-1', ports: `:${echo.port}`, credentials: { apiKey: CANARY_KEY }, proxyUrl: server.url, keepaliveMs: 1000 });
  const port = handle.addresses.find((a) => a.family === 'IPv4').port;
  const closes = [];
  handle.on('close', (e) => closes.push(e));
  try {
    // Warm up (lazy modules, first timers), then take the baseline.
    await Promise.all(['reset', 'flood-reset', 'flood-wait-reset'].map((m) => churn(port, m)));
    await eventually(() => handle.stats.active === 0 && server.activeTunnels === 0 && echo.sockets.size === 0, { timeoutMs: 10_000, what: 'warm-up drained' });
    const before = { fds: openFds(), handles: process._getActiveHandles().length, timers: timers() };

    const modes = ['reset', 'flood-reset', 'flood-wait-reset'];
    const total = 1000;
    const concurrency = 25;
    for (let i = 0; i < total; i += concurrency) {
      await Promise.all(Array.from({ length: Math.min(concurrency, total - i) }, (_, k) => churn(port, modes[(i + k) % modes.length])));
    }

    await eventually(() => handle.stats.active === 0 && handle.stats.waiting === 0, { timeoutMs: 20_000, what: 'client tunnels gone' });
    await eventually(() => server.activeTunnels === 0, { timeoutMs: 20_000, what: 'server tunnels gone' });
    await eventually(() => echo.sockets.size === 0, { timeoutMs: 20_000, what: 'target sockets gone' });
    await eventually(() => openFds() <= before.fds + 2, { timeoutMs: 10_000, what: `fds back to ${before.fds} (now ${openFds()})` });
    await eventually(() => process._getActiveHandles().length <= before.handles + 2, { timeoutMs: 10_000, what: `handles back to ${before.handles}` });
    await eventually(() => timers() <= before.timers + 2, { timeoutMs: 10_000, what: `timers back to ${before.timers} (now ${timers()})` });
    assert.equal(closes.length, total + 3);
    // Resets of open tunnels happened (a paused socket notices a reset only once the tunnel reads it).
    const opened = closes.filter((c) => c.opened).length;
    assert.ok(opened >= 300, `${opened} of ${closes.length} tunnels opened`);
    // A client resetting its own connection is not a failure of the tunnel (not counted, no error
    // event), whether bytes moved first or not; nothing else went wrong.
    const codes = new Set(closes.map((c) => c.error?.code).filter(Boolean));
    assert.deepEqual([...codes], []);
    assert.deepEqual(handle.stats.errors, {});
    assert.ok(closes.some((c) => c.reason === 'reset by local client'), 'resets after traffic are named as such');

    // And the tunnel still works.
    const data = randomBytes(10_000);
    const back = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      const chunks = [];
      s.on('data', (d) => {
        chunks.push(d);
        if (Buffer.concat(chunks).length >= data.length) s.end();
      });
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.write(data);
    });
    assert.ok(back.equals(data));
  } finally {
    await handle.close();
    await server.close();
    await echo.close();
  }
});
