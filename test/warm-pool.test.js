// Warm connections: a few connections to the proxy opened ahead of need, carrying the next upgrades.
// A counting TCP proxy in front of the reference server sees every connection the client opens and
// every byte it sends on each; the server's `request` event counts upgrades.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTunnel } from '../dist/index.js';
import { CANARY_KEY, echoRoundTrip, eventually, randomBytes, startCli, startEcho, startServer } from './helpers/index.js';
import { needsTools } from './helpers/services.js';

const toolSkip = needsTools('tinyproxy');
import { startFrontProxy } from './helpers/front-proxy.js';
import { makeTestCa } from './helpers/tls.js';
import { TINYPROXY, startTinyproxy } from './helpers/proxies.js';
import { HttpsProxyAgent } from 'https-proxy-agent';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Echo service, reference server (counting upgrades), counting proxy in front; all closed after `t`. */
async function rig(t, { tls, front = {} } = {}) {
  const echo = await startEcho();
  const server = await startServer(tls ? { tls } : {});
  const proxy = await startFrontProxy(server.port, front);
  const upgrades = [];
  server.on('request', (req) => upgrades.push(req.url));
  t.after(async () => {
    await proxy.close();
    await server.close();
    await echo.close();
  });
  return { echo, server, proxy, upgrades, url: `${tls ? 'https' : 'http'}://127.0.0.1:${proxy.port}` };
}

async function open(t, r, options = {}) {
  const tunnel = await openTunnel({ sandbox: 'sbx-warm', ports: `127.0.0.1:0:${r.echo.port}`, credentials: { apiKey: CANARY_KEY }, proxyUrl: r.url, ...options });
  const events = { open: [], close: [], retry: [] };
  for (const name of Object.keys(events)) tunnel.on(name, (e) => events[name].push(e));
  t.after(() => tunnel.close());
  return { tunnel, events, port: tunnel.addresses[0].port };
}

const echoOnce = async (port) => {
  const data = randomBytes(2000);
  assert.deepEqual(await echoRoundTrip(port, data), data);
};

test('a warm connection carries the next tunnel and is replaced at once; nothing is sent on it before', { timeout: 20_000 }, async (t) => {
  const r = await rig(t);
  const { events, port } = await open(t, r, { prewarm: { max: 2 } });
  // The startup check went out on the first warm connection; one more now waits.
  await eventually(() => r.proxy.conns.length === 2, { what: 'a warm connection after the check' });
  await sleep(200);
  assert.equal(r.upgrades.length, 1, 'only the startup check was upgraded');
  assert.equal(r.proxy.conns.length, 2);
  const warm = r.proxy.conns[1];
  assert.equal(warm.bytesIn, 0, 'nothing is sent on a warm connection before a client arrives');
  assert.equal(warm.closed, false);

  await echoOnce(port);
  assert.equal(events.open.length, 1);
  assert.equal(events.open[0].warm, true, 'the open event says the connection was warm');
  assert.ok(warm.bytesIn > 0, 'the upgrade went out on the warm connection');
  assert.equal(r.upgrades.length, 2);
  await eventually(() => r.proxy.conns.slice(2).some((c) => c.bytesIn === 0 && !c.closed), { what: 'a replacement warm connection' });
  assert.equal(r.upgrades.length, 2);
  assert.equal(events.retry.length, 0);
});

test('--no-prewarm (prewarm: false) opens nothing ahead of need', { timeout: 20_000 }, async (t) => {
  const r = await rig(t);
  const { events, port } = await open(t, r, { prewarm: false });
  await echoOnce(port);
  await sleep(200);
  assert.equal(r.proxy.conns.length, 2, 'the check and the one connection, nothing more');
  assert.ok(r.proxy.conns.every((c) => c.bytesIn > 0));
  assert.equal(events.open[0].warm, false);
});

test('the pool drains after the quiet period, then opens nothing until a connection arrives', { timeout: 20_000 }, async (t) => {
  const r = await rig(t);
  const { events, port } = await open(t, r, { prewarm: { idleMs: 1000 } });
  await eventually(() => r.proxy.conns.length === 2, { what: 'a warm connection' });
  await eventually(() => r.proxy.open().length === 0, { what: 'the warm connection to be closed after the quiet period' });
  const count = r.proxy.conns.length;
  await sleep(800);
  assert.equal(r.proxy.conns.length, count, 'no connection is opened while quiet');

  // The next connection connects afresh, and warming starts again.
  await echoOnce(port);
  assert.equal(events.open.at(-1).warm, false);
  await eventually(() => r.proxy.conns.slice(count).some((c) => c.bytesIn === 0 && !c.closed), { what: 'warming to resume' });
  await echoOnce(port);
  assert.equal(events.open.at(-1).warm, true);
});

test('the pool grows to a burst (capped at max) and the next burst goes out warm', { timeout: 20_000 }, async (t) => {
  const r = await rig(t);
  const { events, port } = await open(t, r, { prewarm: { max: 4 } });
  const idleWarm = () => r.proxy.conns.filter((c) => c.bytesIn === 0 && !c.closed).length;
  await Promise.all(Array.from({ length: 6 }, () => echoOnce(port)));
  await eventually(() => idleWarm() === 4, { what: 'four warm connections after a burst of six' });
  await sleep(200);
  assert.equal(idleWarm(), 4, 'no more than max');
  const before = events.open.length;
  await Promise.all(Array.from({ length: 4 }, () => echoOnce(port)));
  assert.deepEqual(events.open.slice(before).map((e) => e.warm), [true, true, true, true]);
});

test('a proxy that closes idle connections causes no handshake storm and no failed connection', { timeout: 30_000 }, async (t) => {
  const r = await rig(t, { front: { idleCloseMs: 300 } });
  const { events, port } = await open(t, r, { prewarm: { max: 4 } });
  // A browser-like burst makes the pool want 4; then the proxy keeps closing what sits idle.
  await Promise.all(Array.from({ length: 6 }, () => echoOnce(port)));
  const clients = 6;
  const windowStart = r.proxy.conns.length;
  for (let i = 0; i < 6; i += 1) {
    await sleep(500);
    await echoOnce(port);
  }
  // Over ~3 s: each local connection may open one (its own or a replacement); refills after the
  // proxy's closes are capped at a few a minute. A storm would be a connection per idle limit per slot.
  const opened = r.proxy.conns.length - windowStart;
  assert.ok(opened <= 6 * 2 + 3, `opened ${opened} connections in the window`);
  // Every echo above came back whole; no tunnel failed to open. (The proxy also ends tunnels that
  // sit idle while closing after their echo: those close with errors, as they would anywhere.)
  assert.equal(events.close.filter((e) => !e.opened).length, 0, 'no local connection failed to open');
  assert.equal(events.retry.length, 0);
  assert.equal(events.open.length, clients + 6);
});

test('a warm connection reset as it is used falls back to a fresh one, invisibly', { timeout: 20_000 }, async (t) => {
  const r = await rig(t, { front: { resetIfIdleMs: 150 } });
  const { tunnel, events, port } = await open(t, r, { prewarm: { max: 1 } });
  await eventually(() => r.proxy.conns.length === 2, { what: 'a warm connection' });
  await sleep(300);
  await echoOnce(port);
  assert.equal(r.proxy.conns[1].reset, true, 'the warm connection was reset when used');
  assert.equal(events.open.length, 1);
  assert.equal(events.open[0].warm, false, 'the tunnel opened on a fresh connection');
  assert.equal(events.retry.length, 0, 'no retry is reported');
  assert.deepEqual(tunnel.stats.errors, {});
  assert.equal(r.upgrades.length, 2, 'the server saw the check and one upgrade');
});

test('a 408 from the proxy crossing the upgrade on a warm connection is not an error either', { timeout: 20_000 }, async (t) => {
  const r = await rig(t, { front: { resetIfIdleMs: 150, idleReply: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' } });
  const { tunnel, events, port } = await open(t, r, { prewarm: { max: 1 } });
  await eventually(() => r.proxy.conns.length === 2, { what: 'a warm connection' });
  await sleep(300);
  await echoOnce(port);
  assert.equal(r.proxy.conns[1].reset, true, 'the proxy answered 408 on the warm connection');
  assert.equal(events.open[0].warm, false);
  assert.equal(events.retry.length, 0);
  assert.deepEqual(tunnel.stats.errors, {});
});

test('wss: the CLI sends its upgrades on warm TLS connections, says so, and sends no upgrade ahead of need', { timeout: 30_000 }, async (t) => {
  const ca = makeTestCa();
  t.after(() => ca.close());
  const r = await rig(t, { tls: { cert: ca.cert, key: ca.key } });
  const cli = await startCli(['-v', '--proxy-url', r.url, 'sbx-warm', `127.0.0.1:0:${r.echo.port}`], { env: { NODE_EXTRA_CA_CERTS: ca.caFile } });
  t.after(() => cli.stop());
  await eventually(() => r.proxy.conns.length === 2, { what: 'a warm TLS connection' });
  await sleep(200);
  assert.equal(r.upgrades.length, 1, 'only the startup check was upgraded');
  await echoOnce(cli.port);
  const opened = await cli.waitFor((ev) => ev.find((e) => e.event === 'open'), 10_000, 'open');
  assert.equal(opened.warm, true);
  assert.equal(r.upgrades.length, 2);
  await eventually(() => r.proxy.conns.length >= 3, { what: 'a replacement warm connection' });
  await echoOnce(cli.port);
  await cli.waitFor((ev) => ev.filter((e) => e.event === 'open' && e.warm).length === 2, 10_000, 'a second warm open');
  const { stderr } = await cli.stop();
  assert.match(stderr, /open \(warm connection\)/);
});

test('through an HTTP CONNECT proxy: the CONNECT is made ahead of need, the upgrade when a client arrives', { skip: toolSkip, timeout: 30_000 }, async (t) => {
  assert.ok(TINYPROXY, 'tinyproxy not found: install the Debian package tinyproxy (.ci/run does)');
  const r = await rig(t);
  const front = await startTinyproxy();
  t.after(() => front.close());
  const { events, port } = await open(t, r, { agent: new HttpsProxyAgent(front.url) });
  const hostPort = `127.0.0.1:${r.proxy.port}`;
  await eventually(() => front.connects(hostPort) >= 2 && r.proxy.conns.length === 2, { what: 'the check and a warm CONNECT' });
  await sleep(200);
  assert.equal(r.upgrades.length, 1);
  // The check and the warm CONNECT reach the proxy in either order.
  const warm = r.proxy.conns.filter((c) => c.bytesIn === 0);
  assert.equal(warm.length, 1, 'nothing is sent through the warm CONNECT before a client arrives');
  await echoOnce(port);
  assert.equal(events.open[0].warm, true);
  assert.ok(warm[0].bytesIn > 0, 'the upgrade went through the warm CONNECT');
  await eventually(() => front.connects(hostPort) >= 3, { what: 'a replacement CONNECT' });
});

test('a bad prewarm option is a usage error naming it', async () => {
  const base = { sandbox: 'sbx-warm', ports: '1', credentials: { apiKey: CANARY_KEY }, proxyUrl: 'http://127.0.0.1:1', check: false };
  for (const [prewarm, name] of [['yes', 'prewarm'], [{ max: -1 }, 'prewarm.max'], [{ max: 65 }, 'prewarm.max'], [{ idleMs: 0 }, 'prewarm.idleMs'], [null, 'prewarm']]) {
    await assert.rejects(openTunnel({ ...base, prewarm }), (err) => err.code === 'TL_ERR_USAGE' && err.message.includes(`option ${name}`), JSON.stringify(prewarm));
  }
});
