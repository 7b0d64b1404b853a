// Library contract: option validation names the option, close() is idempotent on both handles, and a
// text frame from the server ends that tunnel with TL_ERR_PROTOCOL while the listener keeps serving.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { ErrorCodes, TunnelError, createTunnelServer, openTunnel } from '../dist/index.js';
import { CANARY_KEY, echoRoundTrip, eventually, randomBytes, sha256, startEcho, startServer } from './helpers/index.js';

const BASE = { sandbox: 'sbx-1', ports: ':5432', credentials: { apiKey: CANARY_KEY }, proxyUrl: 'http://127.0.0.1:9', check: false };

const BAD_OPTIONS = [
  ['sandbox', { sandbox: 'a/b' }, /Invalid sandbox/],
  // Passed as typed to a lookup, but a local proxy routes on Host <id>.local: there it must be a label.
  ['sandbox that cannot be a host label', { sandbox: 'a.b' }, /cannot be part of a host name/],
  ['sandbox missing', { sandbox: undefined }, /Invalid sandbox/],
  ['ports', { ports: 'abc' }, /port spec "abc"/],
  ['ports missing', { ports: undefined }, /option ports/],
  ['ports number', { ports: 5432 }, /option ports/],
  ['ports null entry', { ports: [':1', null] }, /option ports/],
  ['ports empty', { ports: [] }, /Missing port spec/],
  ['ports object', { ports: { localPort: 0, remotePort: 0 } }, /remote port 0/],
  ['ports duplicate', { ports: ['80:1', '80:2'] }, /Local port 80 is used twice/],
  ['credentials missing', { credentials: undefined }, /option credentials/],
  ['credentials string', { credentials: CANARY_KEY }, /option credentials/],
  ['proxyUrl', { proxyUrl: 'ftp://x' }, /proxy URL scheme/],
  ['proxyUrl number', { proxyUrl: 5 }, /option proxyUrl/],
  ['proxyUrl clear text', { proxyUrl: 'http://example.com' }, /--allow-insecure/],
  ['address', { address: 'nope' }, /option address/],
  ['address number', { address: 1 }, /option address/],
  ['connectTimeoutMs', { connectTimeoutMs: -1 }, /option connectTimeoutMs/],
  ['connectTimeoutMs string', { connectTimeoutMs: '10' }, /option connectTimeoutMs/],
  ['keepaliveMs', { keepaliveMs: Number.NaN }, /option keepaliveMs/],
  ['lingerMs', { lingerMs: -5 }, /option lingerMs/],
  ['maxConnections', { maxConnections: 0 }, /option maxConnections/],
  ['waitMs', { waitMs: -1 }, /option waitMs/],
  ['maxPayload', { maxPayload: 1 }, /option maxPayload/],
  ['headers value', { headers: { 'x-a': 'b\r\nx-evil: 1' } }, /option headers/],
  ['headers name', { headers: { 'x a': 'b' } }, /option headers/],
  ['headers object', { headers: 'x' }, /option headers/],
];

for (const [name, patch, pattern] of BAD_OPTIONS) {
  test(`openTunnel rejects a bad ${name} with TL_ERR_USAGE naming it`, async () => {
    await assert.rejects(openTunnel({ ...BASE, ...patch }), (err) => {
      assert.ok(err instanceof TunnelError, String(err));
      assert.equal(err.code, ErrorCodes.USAGE);
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes(CANARY_KEY.slice(10)), err.message);
      return true;
    });
  });
}

test('openTunnel rejects a missing options object with TL_ERR_USAGE', async () => {
  await assert.rejects(openTunnel(), { code: ErrorCodes.USAGE });
  await assert.rejects(openTunnel(null), { code: ErrorCodes.USAGE });
});

test('openTunnel with empty credentials is TL_ERR_NO_CREDENTIALS', async () => {
  await assert.rejects(openTunnel({ ...BASE, credentials: {} }), { code: ErrorCodes.NO_CREDENTIALS });
});

test('createTunnelServer rejects bad options with TL_ERR_USAGE naming them', async () => {
  await assert.rejects(createTunnelServer({ allow: [0] }), { code: ErrorCodes.USAGE, message: /option allow/ });
  await assert.rejects(createTunnelServer({ token: '' }), { code: ErrorCodes.USAGE, message: /option token/ });
});

test('close() is idempotent on the tunnel handle and the server handle', { timeout: 30_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const tunnel = await openTunnel({ ...BASE, ports: `:${echo.port}`, proxyUrl: server.url, check: true });
  const port = tunnel.addresses[0].port;
  const closes = [];
  tunnel.on('close', (e) => closes.push(e));

  // One tunnel held open across close().
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const data = randomBytes(10_000);
  const back = [];
  socket.on('data', (d) => back.push(d));
  socket.write(data);
  await eventually(() => Buffer.concat(back).length === data.length, { what: 'echo' });
  assert.equal(sha256(Buffer.concat(back)), sha256(data));
  // close() cuts the connection (a reset: see integrity.test.js), so wait for 'close', not a clean end.
  const socketClosed = new Promise((resolve) => socket.once('close', resolve));

  const [a, b] = [tunnel.close(), tunnel.close()];
  await Promise.all([a, b]);
  await tunnel.close();
  await socketClosed;
  assert.equal(closes.length, 1, 'one close event for the one connection');
  assert.equal(tunnel.stats.active, 0);
  await assert.rejects(echoRoundTrip(port, Buffer.from('x')), { code: 'ECONNREFUSED' });

  await eventually(() => server.activeTunnels === 0, { what: 'server side closed' });
  await Promise.all([server.close(), server.close()]);
  await server.close();
  await assert.rejects(echoRoundTrip(server.port, Buffer.from('x')), { code: 'ECONNREFUSED' });
  await echo.close();
});

test('a text frame from the server closes that tunnel with TL_ERR_PROTOCOL; the listener keeps serving', { timeout: 30_000 }, async () => {
  // A tiny proxy that accepts every upgrade and answers with a text frame: the first connection gets
  // text, later ones get their bytes echoed as binary.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const serverCloses = [];
  let n = 0;
  wss.on('connection', (ws) => {
    ws.on('close', (code) => serverCloses.push(code));
    ws.on('error', () => {});
    if (n++ === 0) ws.send('hello', { binary: false });
    else ws.on('message', (d) => ws.send(d, { binary: true }));
  });
  const tunnel = await openTunnel({ ...BASE, ports: ':7', proxyUrl: `http://127.0.0.1:${wss.address().port}` });
  try {
    const closed = once(tunnel, 'close').then(([e]) => e);
    const socket = net.connect(tunnel.addresses[0].port, '127.0.0.1');
    const got = [];
    socket.on('data', (d) => got.push(d));
    // The tunnel is aborted: the local client sees a reset (or a plain close), never data.
    const socketError = new Promise((resolve) => {
      socket.on('error', resolve);
      socket.on('close', () => resolve(undefined));
    });
    await new Promise((resolve) => socket.on('close', resolve));
    const err = await socketError;
    if (err) assert.equal(err.code, 'ECONNRESET');
    assert.equal(Buffer.concat(got).length, 0, 'no text bytes reach the local client');
    const e = await closed;
    assert.equal(e.error?.code, ErrorCodes.PROTOCOL);
    assert.match(e.error.message, /text frame/);
    await eventually(() => serverCloses.length === 1, { what: 'server saw the close' });
    assert.equal(serverCloses[0], 1003);
    assert.equal(tunnel.stats.errors[ErrorCodes.PROTOCOL], 1);

    const payload = randomBytes(5000);
    const back = await echoRoundTrip(tunnel.addresses[0].port, payload);
    assert.equal(sha256(back), sha256(payload));
  } finally {
    await tunnel.close();
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(() => r()));
  }
});

test('stats.lingering: a tunnel whose client has left counts as lingering, not open, until it closes; the status line says so', async () => {
  const { StatusLine } = await import('../dist/cli/status-line.js');
  const target = net.createServer((socket) => socket.on('error', () => {})); // reads, never answers, never closes
  await new Promise((resolve) => target.listen(0, '127.0.0.1', resolve));
  const server = await startServer();
  const handle = await openTunnel({ ...BASE, ports: `:${target.address().port}`, proxyUrl: server.url, lingerMs: 1500 });
  try {
    const client = net.connect(handle.addresses[0].port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    client.write('last words');
    await eventually(() => handle.stats.active === 1, { timeoutMs: 5000, what: 'the tunnel open' });
    assert.equal(handle.stats.lingering, 0);
    client.end();
    await eventually(() => handle.stats.lingering === 1, { timeoutMs: 5000, what: 'lingering after the client left' });
    assert.equal(handle.stats.active, 1);
    const line = new StatusLine({ show() {}, hide() {} }, handle, (t) => t);
    assert.match(line.text(Date.now()), /^0 open · 1 served/);
    line.stop();
    await eventually(() => handle.stats.active === 0 && handle.stats.lingering === 0, { timeoutMs: 5000, what: 'closed after the linger' });
    client.destroy();
  } finally {
    await handle.close();
    await server.close();
    target.close();
  }
});
