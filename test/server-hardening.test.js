// The reference server (tl-tunnel-server) against hostile clients, mostly over raw sockets: strict
// path, token and port checks, only 127.0.0.1 as a target, limits, timeouts and binding.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import WebSocket from 'ws';
import { createTunnelServer } from '../dist/index.js';
import { CANARY_KEY, SERVER_CLI, cliEnv, eventually, runCli, startEcho, startServer } from './helpers/index.js';
import { selfSignedCert } from './helpers/tls.js';

const TUNNEL = '/api/v1/tunnels/tcp';

/** A raw upgrade request; `auth: null` leaves the Authorization header out. */
function upgradeRequest(target, { auth = `Bearer ${CANARY_KEY}`, extra = '' } = {}) {
  return (
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
    `${auth === null ? '' : `Authorization: ${auth}\r\n`}${extra}\r\n`
  );
}

/**
 * Sends `text` on a raw socket and resolves with the answer's status, headers and JSON body once the
 * server closes (or, for a 101, once the head is complete).
 */
function raw(port, text, { host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let data = '';
    const done = () => {
      const [head, body = ''] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      socket.destroy();
      resolve({ status, head, body, json });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      data += d;
      if (data.startsWith('HTTP/1.1 101') && data.includes('\r\n\r\n')) done();
    });
    socket.on('error', (err) => (err.code === 'ECONNRESET' ? done() : reject(err)));
    socket.on('close', done);
    socket.write(text);
  });
}

test('constant-time token check: only the exact Bearer token opens a tunnel', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const connections = [];
  echo.server.on('connection', (s) => connections.push(s.remoteAddress));
  const target = `${TUNNEL}?port=${echo.port}`;
  try {
    for (const auth of [null, '', 'Bearer', 'Bearer ', `Basic ${CANARY_KEY}`, `Bearer ${CANARY_KEY.slice(0, -1)}`, `Bearer ${CANARY_KEY}x`, `Bearer  ${CANARY_KEY}`, `Bearer ${CANARY_KEY.toUpperCase()}`, CANARY_KEY, `Token ${CANARY_KEY}`]) {
      const r = await raw(server.port, upgradeRequest(target, { auth }));
      assert.equal(r.status, 401, `${JSON.stringify(auth)}: ${r.head}`);
      assert.deepEqual(r.json, { error: 'Missing or invalid bearer token', code: 'UNAUTHORIZED' });
    }
    // Refused requests never reach the target port.
    assert.deepEqual(connections, []);
    for (const auth of [`Bearer ${CANARY_KEY}`, `bearer ${CANARY_KEY}`]) {
      assert.equal((await raw(server.port, upgradeRequest(target, { auth }))).status, 101, auth);
    }
  } finally {
    await server.close();
    await echo.close();
  }
});

test('upgrades only on exactly /api/v1/tunnels/tcp (404 JSON otherwise); plain requests get JSON too', async () => {
  const echo = await startEcho();
  const server = await startServer();
  try {
    for (const p of ['/', '/api/v1/tunnels', `${TUNNEL}/`, `${TUNNEL}x`, TUNNEL.toUpperCase(), `/x/..${TUNNEL}`, `/api/v1/tunnels/./tcp`, '/api/v1/tunnels/%74cp', `${TUNNEL};x`, `http://127.0.0.1${TUNNEL}`, `//${TUNNEL}`, '*']) {
      const r = await raw(server.port, upgradeRequest(`${p}?port=${echo.port}`));
      assert.equal(r.status, 404, `${p}: ${r.head}`);
      assert.equal(r.json?.code, 'NOT_FOUND', p);
      assert.match(r.head, /content-type: application\/json/i);
    }
    const plain = await raw(server.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(plain.status, 404);
    assert.equal(plain.json?.code, 'NOT_FOUND');
    const noUpgrade = await raw(server.port, `GET ${TUNNEL}?port=${echo.port} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CANARY_KEY}\r\n\r\n`);
    assert.equal(noUpgrade.status, 426);
    assert.equal(noUpgrade.json?.code, 'UPGRADE_REQUIRED');
    const bad = await raw(server.port, 'NOT HTTP AT ALL\r\n\r\n');
    assert.equal(bad.status, 400);
    assert.equal(bad.json?.code, 'BAD_REQUEST');
    const huge = await raw(server.port, upgradeRequest(`${TUNNEL}?port=${echo.port}`, { extra: `X-Big: ${'a'.repeat(64 * 1024)}\r\n` }));
    assert.equal(huge.status, 431);
  } finally {
    await server.close();
    await echo.close();
  }
});

test('port is parsed strictly: anything but one plain integer 1..65535 is a 400 and no connection', async () => {
  const echo = await startEcho();
  const server = await startServer();
  let connections = 0;
  echo.server.on('connection', () => (connections += 1));
  const p = echo.port;
  try {
    for (const query of [`port=${p}abc`, `port=+${p}`, `port=${p}.0`, `port=0x${p.toString(16)}`, `port=${p}&port=${p}`, `port=${p}&port=1`, '', 'port=', 'port=0', 'port=65536', 'port=99999999999', `port=0${p}`, `port=%20${p}`, `port=${p}%20`, `PORT=${p}`, `port[]=${p}`, 'port=-1', 'port=1e3', 'port=%D9%A3', `port=%2B${p}`, `port=${p}#x`, 'other=1']) {
      const r = await raw(server.port, upgradeRequest(`${TUNNEL}?${query}`));
      assert.equal(r.status, 400, `${query}: ${r.head}`);
      assert.deepEqual(r.json, { error: 'port must be one integer from 1 to 65535', code: 'INVALID_PORT' }, query);
    }
    const r = await raw(server.port, upgradeRequest(TUNNEL));
    assert.equal(r.status, 400);
    assert.equal(connections, 0);
    assert.equal((await raw(server.port, upgradeRequest(`${TUNNEL}?port=${p}`))).status, 101);
    // Extra parameters cannot choose another target host.
    assert.equal((await raw(server.port, upgradeRequest(`${TUNNEL}?port=${p}&host=10.0.0.1&target=x`))).status, 101);
  } finally {
    await server.close();
    await echo.close();
  }
});

test('relays only to 127.0.0.1, whatever the request says', async (t) => {
  // A service on 127.0.0.2 (another loopback address) and nothing on 127.0.0.1 at that port.
  const other = net.createServer((s) => s.destroy());
  try {
    other.listen(0, '127.0.0.2');
    await once(other, 'listening');
  } catch {
    t.skip('cannot bind 127.0.0.2 here');
    return;
  }
  const port = other.address().port;
  let reached = 0;
  other.on('connection', () => (reached += 1));
  const echo = await startEcho();
  const peers = [];
  echo.server.on('connection', (s) => peers.push(s.remoteAddress));
  const server = await startServer();
  try {
    for (const target of [`${TUNNEL}?port=${port}`, `${TUNNEL}?port=${port}&host=127.0.0.2`]) {
      const r = await raw(server.port, upgradeRequest(target, { extra: 'X-Forwarded-Host: 127.0.0.2\r\n' }).replace('Host: 127.0.0.1', 'Host: 127.0.0.2'));
      // Either 502 (nothing on 127.0.0.1:port) or, if something else took the port there, not 127.0.0.2.
      assert.ok(r.status === 502 || r.status === 101, r.head);
    }
    assert.equal(reached, 0, 'nothing reached 127.0.0.2');
    assert.equal((await raw(server.port, upgradeRequest(`${TUNNEL}?port=${echo.port}`))).status, 101);
    await eventually(() => peers.length === 1);
    assert.deepEqual(peers, ['127.0.0.1']);
  } finally {
    await server.close();
    await echo.close();
    other.close();
  }
});

test('allow list is enforced (400 PORT_NOT_ALLOWED) and validated', async () => {
  const echo = await startEcho();
  const blocked = await startEcho();
  const server = await startServer({ allow: [echo.port] });
  let reached = 0;
  blocked.server.on('connection', () => (reached += 1));
  try {
    const r = await raw(server.port, upgradeRequest(`${TUNNEL}?port=${blocked.port}`));
    assert.equal(r.status, 400);
    assert.equal(r.json?.code, 'PORT_NOT_ALLOWED');
    assert.equal(reached, 0);
    assert.equal((await raw(server.port, upgradeRequest(`${TUNNEL}?port=${echo.port}`))).status, 101);
    await assert.rejects(createTunnelServer({ allow: [0] }), (err) => err.code === 'TL_ERR_USAGE');
    await assert.rejects(createTunnelServer({ allow: [65536] }), (err) => err.code === 'TL_ERR_USAGE');
    for (const bad of ['5432,abc', '0', '65536', '+80', '80.0', '']) {
      const c = await runCli(['--allow', bad, '--port', '0'], { bin: SERVER_CLI, timeoutMs: 10_000 });
      assert.equal(c.code, 2, `--allow ${bad}: ${c.stderr}`);
      assert.match(c.stderr, /--allow/);
    }
  } finally {
    await server.close();
    await echo.close();
    await blocked.close();
  }
});

function openWs(server, port, options = {}) {
  const ws = new WebSocket(`${server.url}${TUNNEL}?port=${port}`, { headers: { authorization: `Bearer ${CANARY_KEY}` }, ...options });
  ws.on('error', () => {});
  return ws;
}

test('max connections: further upgrades get 503 until a tunnel closes', async () => {
  const echo = await startEcho();
  const server = await startServer({ maxConnections: 2 });
  const open = [];
  try {
    for (let i = 0; i < 2; i += 1) {
      const ws = openWs(server, echo.port);
      await once(ws, 'open');
      open.push(ws);
    }
    const r = await raw(server.port, upgradeRequest(`${TUNNEL}?port=${echo.port}`));
    assert.equal(r.status, 503);
    assert.equal(r.json?.code, 'TOO_MANY_CONNECTIONS');
    open.shift().close();
    await eventually(() => server.activeTunnels === 1, { what: 'one tunnel left' });
    const ws = openWs(server, echo.port);
    await once(ws, 'open');
    open.push(ws);
  } finally {
    for (const ws of open) ws.terminate();
    await server.close();
    await echo.close();
  }
});

/** Opens a raw socket that sends `start` and then one byte every 100 ms; resolves with what came back once the server cuts it. */
function slowloris(port, start, { secure = false } = {}) {
  return new Promise((resolve) => {
    const socket = secure ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(port, '127.0.0.1');
    let got = '';
    let timer;
    socket.setEncoding('latin1');
    socket.on('data', (d) => (got += d));
    socket.on('error', () => {});
    socket.on(secure ? 'secureConnect' : 'connect', () => {
      if (start) socket.write(start);
      timer = setInterval(() => socket.writable && start && socket.write('a'), 100);
    });
    socket.on('close', () => {
      clearInterval(timer);
      resolve(got);
    });
  });
}

test('slowloris: headers dripped byte by byte, half a request line, or nothing at all are cut (408)', { timeout: 15_000 }, async () => {
  const server = await startServer({ headersTimeoutMs: 400 });
  try {
    // Node sweeps for header timeouts every 30 s unless told otherwise: the 15 s test timeout
    // fails if the server does not set connectionsCheckingInterval.
    const results = await Promise.all([
      slowloris(server.port, `GET ${TUNNEL}?port=1 HTTP/1.1\r\nHost: x\r\nX-Slow: `),
      slowloris(server.port, 'GET /api/v1/tun'),
      slowloris(server.port, ''),
    ]);
    for (const got of results) assert.match(got, /^HTTP\/1\.1 408 .*REQUEST_TIMEOUT/s);
  } finally {
    await server.close();
  }
});

test('slowloris over TLS: a client that never finishes the handshake is cut', { timeout: 15_000 }, async (t) => {
  const cert = selfSignedCert();
  assert.ok(cert, 'openssl is not available: install the Debian package openssl (.ci/run does)');
  const server = await startServer({ headersTimeoutMs: 400, tls: cert });
  try {
    // A TCP connection that never sends a ClientHello, and a TLS one that drips its headers.
    const [silent, drip] = await Promise.all([slowloris(server.port, ''), slowloris(server.port, `GET ${TUNNEL}?port=1 HTTP/1.1\r\nX: `, { secure: true })]);
    assert.equal(silent, '');
    assert.match(drip, /^HTTP\/1\.1 408/);
  } finally {
    await server.close();
  }
});

test('frames larger than maxPayload close the tunnel with 1009; a text frame closes it with 1003', async () => {
  const echo = await startEcho();
  const server = await startServer({ maxPayload: 4096 });
  const ends = [];
  server.on('close', (e) => ends.push(e));
  try {
    const big = openWs(server, echo.port);
    await once(big, 'open');
    big.send(Buffer.alloc(8192));
    const [bigCode] = await once(big, 'close');
    assert.equal(bigCode, 1009);

    const text = openWs(server, echo.port);
    await once(text, 'open');
    text.send('hello');
    const [textCode] = await once(text, 'close');
    assert.equal(textCode, 1003);

    // Binary within the limit still flows.
    const ok = openWs(server, echo.port);
    await once(ok, 'open');
    ok.send(Buffer.alloc(4096, 7));
    const [msg] = await once(ok, 'message');
    assert.equal(msg.length, 4096);
    ok.close();
    await eventually(() => ends.length === 3 && server.activeTunnels === 0, { what: 'three ends' });
    assert.deepEqual(ends.slice(0, 2).map((e) => e.error?.code), ['TL_ERR_PROTOCOL', 'TL_ERR_PROTOCOL']);
    assert.equal(echo.sockets.size, 0, 'target sockets are closed');
  } finally {
    await server.close();
    await echo.close();
  }
});

/** Starts tl-tunnel-server with args and resolves with its JSON listening line and stderr so far. */
async function startServerCli(args) {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [SERVER_CLI, '--json', '--port', '0', '--token', CANARY_KEY, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  await eventually(() => stdout.includes('\n') && stderr.includes('listening on'), { timeoutMs: 10_000, what: 'tl-tunnel-server listening' });
  child.kill('SIGINT');
  await once(child, 'close');
  assert.ok(!stdout.includes(CANARY_KEY) && !stderr.includes(CANARY_KEY), 'the token is not printed');
  return { event: JSON.parse(stdout.split('\n')[0]), stderr };
}

test('binds 127.0.0.1 by default; warns when told to listen beyond loopback', { timeout: 30_000 }, async () => {
  const server = await createTunnelServer();
  assert.equal(server.host, '127.0.0.1');
  await server.close();

  const local = await startServerCli([]);
  assert.equal(local.event.host, '127.0.0.1');
  assert.doesNotMatch(local.stderr, /warning/);

  const wide = await startServerCli(['--host', '0.0.0.0']);
  assert.equal(wide.event.host, '0.0.0.0');
  assert.match(wide.stderr, /warning.*beyond this machine/);
});

test('option limits are validated', async () => {
  for (const options of [{ maxConnections: 0 }, { maxPayload: -1 }, { headersTimeoutMs: 0 }, { maxConnections: 1.5 }, { token: '' }]) {
    await assert.rejects(createTunnelServer(options), (err) => err.code === 'TL_ERR_USAGE', JSON.stringify(options));
  }
});
