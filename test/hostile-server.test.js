// A sandbox proxy that misbehaves in every way we could think of. For each: that one tunnel ends
// with a clear line and the right TL_ERR_ code, its local socket is closed, other connections are
// still served, and repeating it does not grow memory.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { openTunnel } from '../dist/index.js';
import { CANARY_KEY, echoRoundTrip, eventually, randomBytes, sha256, startCli } from './helpers/index.js';
import { answer, frame, startHostile, switching } from './helpers/hostile.js';

const MiB = 1024 * 1024;
const GOOD_PORT = 9;
const CONNECT_TIMEOUT_MS = 1000;
const KEEPALIVE_MS = 250;

/** remote port -> what the server does, the error code the tunnel must end with, and its line. */
const CASES = {
  11: { what: 'text frame', code: 'TL_ERR_PROTOCOL', line: /text frame/, run: (req, s, h, { ws }) => ws((w) => w.send('not binary')) },
  12: { what: '200 instead of 101', code: 'TL_ERR_PROXY_STATUS', line: /answered 200 instead of opening the tunnel/, run: (req, s) => answer(s, 200, { ok: true }) },
  13: { what: '101 with a wrong Sec-WebSocket-Accept', code: 'TL_ERR_PROTOCOL', line: /did not complete a valid WebSocket upgrade/, run: (req, s) => s.write(switching(req, 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=')) },
  14: { what: 'a 64 MiB frame header', code: 'TL_ERR_PROTOCOL', line: /larger than the maximum payload/, run: (req, s) => s.write(Buffer.concat([Buffer.from(switching(req)), frame(2, Buffer.alloc(0), 64 * MiB)])) },
  15: { what: 'no answer to the upgrade', code: 'TL_ERR_TIMEOUT', line: /did not open the tunnel in time/, run: () => {} },
  16: { what: 'silence after the upgrade', code: 'TL_ERR_KEEPALIVE', line: /stopped answering/, run: (req, s) => s.write(switching(req)) },
  17: { what: 'garbage instead of HTTP', code: 'TL_ERR_PROTOCOL', line: /did not complete a valid WebSocket upgrade/, run: (req, s) => s.end(Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe]), Buffer.from('garbage\r\n\r\n')])) },
  18: { what: 'garbage frames after the upgrade', code: 'TL_ERR_PROTOCOL', line: /broke the WebSocket protocol/, run: (req, s) => s.write(Buffer.concat([Buffer.from(switching(req)), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])])) },
  20: { what: 'close 1000', code: undefined, line: /closed by peer \(1000\)/, run: (req, s, h, { ws }) => ws((w) => w.close(1000, 'done')) },
  21: { what: 'close 1001', code: 'TL_ERR_REMOTE_CLOSED', line: /closed by the peer with code 1001 \(going away: going away\) before the connection ended/, run: (req, s, h, { ws }) => ws((w) => w.close(1001, 'going away')) },
  22: { what: 'dropped connection (1006)', code: 'TL_ERR_REMOTE_CLOSED', line: /without a close frame \(1006\)/, run: (req, s, h, { ws }) => ws((w) => setImmediate(() => w.terminate())) },
  23: { what: 'close 1011', code: 'TL_ERR_REMOTE_CLOSED', line: /closed by the peer with code 1011: internal/, run: (req, s, h, { ws }) => ws((w) => w.close(1011, 'internal')) },
  24: { what: 'close 4000', code: 'TL_ERR_REMOTE_CLOSED', line: /closed by the peer with code 4000/, run: (req, s, h, { ws }) => ws((w) => w.close(4000)) },
  25: { what: 'close 4999', code: 'TL_ERR_REMOTE_CLOSED', line: /closed by the peer with code 4999: sandbox stopped/, run: (req, s, h, { ws }) => ws((w) => w.close(4999, 'sandbox stopped')) },
};
const PORTS = Object.keys(CASES).map(Number);

function behaviours() {
  return Object.fromEntries(PORTS.map((p) => [p, CASES[p].run]));
}

/** Connects, sends a little, and resolves when the local socket is closed (with what it received). */
function poke(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('connect', () => socket.write('hello'));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

function gcNow() {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  gc();
  gc();
}

test('library: each hostile answer ends its tunnel with the right code and closes the local socket; the handle keeps serving and memory stays flat', { timeout: 90_000 }, async () => {
  const hostile = await startHostile(behaviours());
  const handle = await openTunnel({
    sandbox: 'sbx-1',
    ports: [...PORTS, GOOD_PORT].map((p) => `:${p}`),
    credentials: { apiKey: CANARY_KEY },
    proxyUrl: hostile.url,
    check: false,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    keepaliveMs: KEEPALIVE_MS,
  });
  const localPort = (remote) => handle.addresses.find((a) => a.remotePort === remote && a.family === 'IPv4').port;
  const closes = [];
  handle.on('close', (e) => closes.push(e));
  const round = async () => {
    const before = closes.length;
    await Promise.all(PORTS.map((p) => poke(localPort(p))));
    await eventually(() => closes.length - before >= PORTS.length, { what: 'a close per hostile connection', timeoutMs: 20_000 });
  };
  try {
    await round();
    for (const p of PORTS) {
      const e = closes.find((c) => c.remotePort === p);
      assert.ok(e, `no close for ${CASES[p].what}`);
      assert.equal(e.error?.code, CASES[p].code, `${CASES[p].what}: ${e.reason}`);
      assert.match(e.error?.message ?? e.reason, CASES[p].line, CASES[p].what);
    }
    // Still serving: a good connection on the same handle, after all of that.
    const data = randomBytes(200_000);
    assert.equal(sha256(await echoRoundTrip(localPort(GOOD_PORT), data)), sha256(data));

    // Memory: after a warm-up round, 20 more rounds (in batches) must not grow RSS without bound.
    gcNow();
    const rssBefore = process.memoryUsage().rss;
    for (let batch = 0; batch < 4; batch += 1) await Promise.all(Array.from({ length: 5 }, round));
    await eventually(() => handle.stats.active === 0, { what: 'no active tunnels', timeoutMs: 10_000 });
    gcNow();
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 48 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB over 20 rounds`);
    assert.equal(closes.length, PORTS.length * 21 + 1);
    const stillOpen = [...hostile.sockets].filter((s) => !s.destroyed).length;
    assert.ok(stillOpen <= 1, `${stillOpen} hostile server sockets still open`);
    assert.equal(sha256(await echoRoundTrip(localPort(GOOD_PORT), data)), sha256(data));
  } finally {
    await handle.close();
    await hostile.close();
  }
});

test('CLI: each hostile answer gives one clear line and its code, and the CLI keeps serving', { timeout: 60_000 }, async () => {
  const hostile = await startHostile(behaviours());
  const specs = [...PORTS, GOOD_PORT].map((p) => `:${p}`);
  const cli = await startCli(['--verbose', '--no-check', '--connect-timeout', String(CONNECT_TIMEOUT_MS / 1000), '--keepalive', String(KEEPALIVE_MS / 1000), '--proxy-url', hostile.url, 'sbx-1', ...specs], { mappings: specs.length });
  const listening = cli.events.filter((e) => e.event === 'listening');
  const localPort = (remote) => listening.find((e) => e.remotePort === remote).addresses[0].port;
  let result;
  try {
    await Promise.all(PORTS.map((p) => poke(localPort(p))));
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close').length >= PORTS.length, 20_000, 'a close per hostile connection');
    const data = randomBytes(100_000);
    assert.equal(sha256(await echoRoundTrip(localPort(GOOD_PORT), data)), sha256(data));
  } finally {
    result = await cli.stop();
    await hostile.close();
  }
  assert.equal(result.code, 0, result.stderr);
  for (const p of PORTS) {
    const { code, line, what } = CASES[p];
    const error = result.events.find((e) => e.event === 'error' && e.remotePort === p);
    assert.equal(error?.code, code, `${what}: ${JSON.stringify(error)}`);
    const failures = result.stderr.split('\n').filter((l) => l.startsWith('✖') && l.includes(`sbx-1:${p}:`));
    const verbose = result.stderr.split('\n').filter((l) => l.includes(`sbx-1:${p} closed`));
    // An error gets one ✖ line naming it; a normal close gets the --verbose "closed" line.
    if (code) assert.ok(failures.length === 1 && line.test(failures[0]), `${what}: expected one ✖ line matching ${line} in:\n${result.stderr}`);
    else assert.ok(failures.length === 0 && verbose.length === 1 && line.test(verbose[0]), `${what}: expected one closed line matching ${line} in:\n${result.stderr}`);
  }
});

test('a frame header claiming more than maxPayload is refused at once, without waiting for (or buffering) the payload', { timeout: 20_000 }, async () => {
  const claimed = 2 * MiB;
  // The header is followed by half the claimed payload: a client buffering toward 2 MiB would wait forever.
  const hostile = await startHostile({ 30: (req, s) => s.write(Buffer.concat([Buffer.from(switching(req)), frame(2, Buffer.alloc(claimed / 2), claimed)])) });
  const handle = await openTunnel({ sandbox: 'sbx-1', ports: ':30', credentials: { apiKey: CANARY_KEY }, proxyUrl: hostile.url, check: false, maxPayload: MiB, keepaliveMs: 0 });
  try {
    const closed = once(handle, 'close');
    await poke(handle.addresses[0].port);
    const [e] = await closed;
    assert.equal(e.error?.code, 'TL_ERR_PROTOCOL', e.reason);
    assert.match(e.error.message, /larger than the maximum payload/);
  } finally {
    await handle.close();
    await hostile.close();
  }
});

test('frames that arrive in the same packet as the 101 (a server-first banner, a close) are not lost', { timeout: 20_000 }, async () => {
  const banner = Buffer.from('SSH-2.0-banner\r\n');
  const hostile = await startHostile({
    40: (req, s) => s.write(Buffer.concat([Buffer.from(switching(req)), frame(2, banner)])),
    41: (req, s) => s.write(Buffer.concat([Buffer.from(switching(req)), frame(8, Buffer.concat([Buffer.from([0x0f, 0xa2]), Buffer.from('bye')]))])),
  });
  const handle = await openTunnel({ sandbox: 'sbx-1', ports: [':40', ':41'], credentials: { apiKey: CANARY_KEY }, proxyUrl: hostile.url, check: false, keepaliveMs: 0 });
  const localPort = (remote) => handle.addresses.find((a) => a.remotePort === remote && a.family === 'IPv4').port;
  const closes = [];
  handle.on('close', (e) => closes.push(e));
  try {
    for (let i = 0; i < 10; i += 1) {
      const socket = net.connect(localPort(40), '127.0.0.1');
      socket.on('error', () => {});
      const [first] = await once(socket, 'data');
      assert.equal(first.toString(), banner.toString());
      socket.destroy();
      await poke(localPort(41));
      await eventually(() => closes.filter((c) => c.remotePort === 41).length > i, { what: 'close of :41' });
    }
    for (const c of closes.filter((e) => e.remotePort === 41)) assert.match(c.error?.message ?? '', /code 4002: bye/);
  } finally {
    await handle.close();
    await hostile.close();
  }
});
