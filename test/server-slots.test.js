// The reference server gives back every slot (issue 10, item 6): upgrades that ws refuses, and
// valid upgrades whose client leaves at once, must not keep counting against --max-connections;
// and out of file descriptors is a 503 that says so, not "nothing listening" (item 12).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import WebSocket from 'ws';
import { CANARY_KEY, PROC_SKIP, SERVER_CLI, cliEnv, eventually, fdCount, runCli, startEcho, startServer } from './helpers/index.js';
import { killChild } from './helpers/faults.js';

/** Sends a raw request and resolves with the status code of the answer (0: closed without one). */
function rawStatus(port, request, { endAfterRequest = false } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => (text += d));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on('connect', () => (endAfterRequest ? socket.end(request) : socket.write(request)));
    // A 101 keeps the connection open: the status is enough.
    socket.on('data', () => {
      if (/^HTTP\/1\.1 101/.test(text)) socket.destroy();
    });
  });
}

function upgradeRequest(targetPort, { method = 'GET', key = 'dGhlIHNhbXBsZSBub25jZQ==', version = '13' } = {}) {
  return (
    `${method} /api/v1/tunnels/tcp?port=${targetPort} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CANARY_KEY}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: ${version}\r\n\r\n`
  );
}

/** Opens a real tunnel WebSocket; resolves 'open' or the refusal's status code. */
function tryTunnel(url, targetPort) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/v1/tunnels/tcp?port=${targetPort}`, { headers: { authorization: `Bearer ${CANARY_KEY}` } });
    ws.on('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('error', (err) => resolve(err.message));
  });
}

test('--max-connections: refused upgrades and clients that leave at once give their slot back', async () => {
  const echo = await startEcho();
  const server = await startServer({ maxConnections: 3 });
  try {
    // Three upgrades that ws itself refuses after the target was reached.
    assert.equal(await rawStatus(server.port, upgradeRequest(echo.port, { key: 'not-a-key' })), 400);
    assert.notEqual(await rawStatus(server.port, upgradeRequest(echo.port, { method: 'POST' })), 101);
    assert.equal(await rawStatus(server.port, upgradeRequest(echo.port, { version: '99' })), 400);
    // Five valid upgrades whose client sends FIN right after the request.
    await Promise.all(Array.from({ length: 5 }, () => rawStatus(server.port, upgradeRequest(echo.port), { endAfterRequest: true })));
    await eventually(async () => (await tryTunnel(server.url, echo.port)) === 'open', { timeoutMs: 5000, intervalMs: 200, what: 'a tunnel to open (the slots were never given back)' });
    await eventually(() => server.activeTunnels === 0 && echo.sockets.size === 0, { timeoutMs: 5000, what: 'every tunnel and target socket closed' });
  } finally {
    await server.close();
    await echo.close();
  }
});

const FD_LIMIT = 64;

/** tl-tunnel-server under `ulimit -n FD_LIMIT`; resolves { child, url, port } once it listens. */
function startLimitedServer() {
  const child = spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, SERVER_CLI, '--json', '--port', '0', '--token', CANARY_KEY], {
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) resolve({ child, ...JSON.parse(stdout.slice(0, nl)) });
    });
    child.on('close', (code) => reject(new Error(`tl-tunnel-server exited with ${code}: ${stderr}`)));
  });
}

test('out of file descriptors: the server answers 503 OUT_OF_FILE_DESCRIPTORS and the client says so', { skip: PROC_SKIP }, async () => {
  const echo = await startEcho();
  const server = await startLimitedServer();
  const idle = [];
  try {
    const fds = () => fdCount(server.child.pid);
    // Idle connections (no request yet) take one descriptor each, until the server can accept no
    // more (libuv then accepts and closes at once). Giving one back leaves exactly one: the next
    // upgrade is accepted, but its connection to the target cannot be made.
    let saturated;
    while (saturated === undefined) {
      const before = fds();
      const s = net.connect(server.port, '127.0.0.1');
      s.on('error', () => {});
      await once(s, 'connect');
      await eventually(() => s.closed || fds() > before, { timeoutMs: 5000, what: 'the server to accept or refuse an idle connection' });
      if (s.closed) saturated = fds();
      else idle.push(s);
    }
    idle.pop().destroy();
    await eventually(() => fds() === saturated - 1, { timeoutMs: 5000, what: 'one descriptor given back' });
    const answer = await new Promise((resolve) => {
      const s = net.connect(server.port, '127.0.0.1');
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (d) => (text += d));
      s.on('error', () => {});
      s.on('close', () => resolve(text));
      s.on('connect', () => s.write(upgradeRequest(echo.port)));
    });
    assert.match(answer, /^HTTP\/1\.1 503 /, answer);
    assert.match(answer, /"code":"OUT_OF_FILE_DESCRIPTORS"/);
    assert.match(answer, /ran out of file descriptors \(EMFILE\)/);

    const r = await runCli(['--stdio', '--connect-timeout', '1', '--proxy-url', server.url, 'sbx-fd', String(echo.port)], { timeoutMs: 15_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ran out of file descriptors/, r.stderr);
    assert.doesNotMatch(r.stderr, /Nothing is listening/);
  } finally {
    for (const s of idle) s.destroy();
    await killChild(server.child);
    await echo.close();
  }
});
