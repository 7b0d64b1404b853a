// The friendly-errors table of issue 2, row by row, against the built CLI as a child process: the
// exit code, what the message says, one line on stderr and no stack trace. Proxies that misbehave
// are tiny raw servers on 127.0.0.1; nothing here touches the real network.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { ErrorCodes } from '../dist/index.js';
import { networkError } from '../dist/client/upgrade-error.js';
import { echoRoundTrip, freePort, listen, randomBytes, runCli, sha256, startCli, startEcho, startServer } from './helpers/index.js';
import { makeSelfSigned } from './helpers/tls.js';

/** The lines a fatal error leaves on stderr, without the plain-text progress line of the startup check. */
function errorLines(stderr) {
  return stderr.split('\n').filter((l) => l !== '' && !/^Checking sandbox /.test(l));
}

/** Asserts the exit code, exactly one `error ...` line matching every pattern, and no stack trace. */
function assertFriendly(r, exit, ...patterns) {
  assert.equal(r.code, exit, `exit code; stderr:\n${r.stderr}`);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^error /);
  for (const p of patterns) assert.match(lines[0], p);
  assert.doesNotMatch(r.stderr, /\n\s+at |node:internal|TypeError|\bError:/, 'no stack trace');
}

/** Listens on 127.0.0.1:0; close() also destroys the connections still open. */
async function serve(server, scheme = 'http') {
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** An HTTP server whose every upgrade gets `status` with `body`, as a misbehaving proxy would send. */
function startStatusProxy(status, body) {
  const server = http.createServer((req, res) => res.end());
  server.on('upgrade', (req, socket) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'X'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  });
  return serve(server);
}

/** Accepts TCP connections and never answers: the upgrade can only time out. */
function startBlackhole() {
  return serve(net.createServer());
}

const isRoot = process.getuid?.() === 0;

// ---- 2: bad argument, bad port spec, port 0, port > 65535, duplicate local port, missing key ----

const USAGE_ROWS = [
  ['unknown option', ['--bogus', 'sbx-1', '5432'], /unknown option '--bogus'/i, /e\.g\. tl-tunnel sbx-123 5432/, /--help/],
  ['missing port spec', ['sbx-1'], /missing required argument 'port-spec'/i, /e\.g\. tl-tunnel sbx-123 5432/],
  ['no arguments', [], /missing required argument/i, /e\.g\./],
  ['bad sandbox name', ['sb/x', '5432'], /Invalid sandbox "sb\/x"/, /e\.g\. sbx-123/],
  ['bad port spec', ['sbx-1', 'abc'], /port spec "abc"/, /e\.g\. 5432/],
  ['port 0 as REMOTE', ['sbx-1', '0'], /remote port 0/, /e\.g\. 5432/],
  ['REMOTE 0 after LOCAL', ['sbx-1', '8080:0'], /remote port 0/, /e\.g\. 5432/],
  ['port > 65535', ['sbx-1', '65536'], /65535/, /e\.g\. 5432/],
  ['local port > 65535', ['sbx-1', '70000:80'], /local port 70000/, /e\.g\. 5432/],
  ['duplicate local port', ['sbx-1', '15432:5432', '15432:6379'], /Local port 15432 is used twice/, /:6379 for a free one/],
  ['bad bind address in spec', ['sbx-1', 'nope:1:2'], /bind address "nope"/],
  ['bad --address', ['--address', 'nope', 'sbx-1', '5432'], /bind address "nope" in --address/],
  ['duplicate local port via --address', ['--address', '0.0.0.0', 'sbx-1', '5432', '0.0.0.0:5432:1'], /Local port 5432 is used twice/],
  ['bad --connect-timeout', ['--connect-timeout', 'soon', 'sbx-1', '5432'], /--connect-timeout/, /e\.g\./],
  ['bad proxy URL', ['--proxy-url', 'ftp://x', 'sbx-1', '5432'], /proxy URL scheme/, /https:\/\//],
  ['clear text to a remote proxy', ['--proxy-url', 'http://proxy.example', 'sbx-1', '5432'], /clear text/, /--allow-insecure/],
];

for (const [name, args, ...patterns] of USAGE_ROWS) {
  test(`exit 2: ${name}`, async () => {
    const r = await runCli(args);
    assertFriendly(r, 2, ...patterns);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'reported before the startup check begins');
  });
}

test('exit 2: missing key names TENSORLAKE_API_KEY and --api-key with an example', async () => {
  const r = await runCli(['sbx-1', '5432'], { env: { TENSORLAKE_API_KEY: '' } });
  assertFriendly(r, 2, /No API key/, /TENSORLAKE_API_KEY/, /--api-key/, /e\.g\./);
});

test('usage errors are reported before anything is sent', async () => {
  const server = await startServer();
  let requests = 0;
  server.on('request', () => (requests += 1));
  try {
    assertFriendly(await runCli(['--proxy-url', server.url, 'sbx-1', '0']), 2, /remote port 0/);
    assertFriendly(await runCli(['--proxy-url', server.url, 'sbx-1', '1', '1']), 2, /used twice/);
    assert.equal(requests, 0);
  } finally {
    await server.close();
  }
});

// ---- 3: 401 / 403 ----

test('exit 3: 401 (another token) says the key was rejected, how to set it, and the proxy error', async () => {
  const echo = await startEcho();
  const server = await startServer({ token: 'some-other-token-0123456789' });
  try {
    const r = await runCli(['--proxy-url', server.url, 'sbx-1', String(echo.port)]);
    assertFriendly(r, 3, /rejected the credentials \(401; proxy said: /, /TENSORLAKE_API_KEY/, /--api-key/, /Missing or invalid bearer token/, /UNAUTHORIZED/);
  } finally {
    await server.close();
    await echo.close();
  }
});

test('exit 3: 403 with a JSON body shows the proxy error and code', async () => {
  const proxy = await startStatusProxy(403, { error: 'key not allowed for this project', code: 'FORBIDDEN_PROJECT' });
  try {
    const r = await runCli(['--proxy-url', proxy.url, 'sbx-1', '5432']);
    assertFriendly(r, 3, /rejected the credentials \(403; proxy said: /, /TENSORLAKE_API_KEY/, /key not allowed for this project/, /FORBIDDEN_PROJECT/);
  } finally {
    await proxy.close();
  }
});

test('exit 3 with --json: the error event carries the proxy error and code', async () => {
  const proxy = await startStatusProxy(403, { error: 'nope', code: 'FORBIDDEN' });
  try {
    const r = await runCli(['--json', '--proxy-url', proxy.url, 'sbx-1', '5432']);
    assert.equal(r.code, 3, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const error = events.find((e) => e.event === 'error');
    assert.equal(error.code, ErrorCodes.AUTH);
    assert.equal(error.status, 403);
    assert.equal(error.proxyError, 'nope');
    assert.equal(error.proxyCode, 'FORBIDDEN');
    assert.equal(error.fatal, true);
  } finally {
    await proxy.close();
  }
});

// ---- 4: 404, or the sandbox host does not resolve ----

test('exit 4: 404 says there is no sandbox by that id or name', async () => {
  const proxy = await startStatusProxy(404, { error: 'sandbox not found', code: 'SANDBOX_NOT_FOUND' });
  try {
    const r = await runCli(['--proxy-url', proxy.url, 'my-sandbox', '5432']);
    assertFriendly(r, 4, /No sandbox "my-sandbox"/, /404/, /sandbox not found/, /SANDBOX_NOT_FOUND/);
  } finally {
    await proxy.close();
  }
});

test('exit 4: a 404 without a JSON body still names the sandbox', async () => {
  const proxy = await startStatusProxy(404, '<html>not found</html>');
  try {
    const r = await runCli(['--proxy-url', proxy.url, 'my-sandbox', '5432']);
    assertFriendly(r, 4, /No sandbox "my-sandbox"/);
    assert.doesNotMatch(r.stderr, /html/);
  } finally {
    await proxy.close();
  }
});

// The default per-sandbox host (<sandbox>.sandbox.tensorlake.ai) cannot be made to fail DNS without the
// real network, so the CLI case is an explicit proxy host (exit 6, it is the proxy that is unreachable),
// and the per-sandbox mapping to "no such sandbox" (exit 4) is checked on the mapping function itself.
test('exit 6: a proxy host that does not resolve names the host', { timeout: 30_000 }, async () => {
  const r = await runCli(['--allow-insecure', '--connect-timeout', '2', '--proxy-url', 'http://does-not-exist.invalid:1', 'sbx-1', '5432']);
  assertFriendly(r, 6, /does-not-exist\.invalid/, /does not resolve|Cannot reach/);
});

test('a per-sandbox host that does not resolve maps to TL_ERR_SANDBOX_NOT_FOUND (exit 4)', () => {
  const ctx = { sandbox: 'sbx-1', remotePort: 5432, host: 'sbx-1.sandbox.tensorlake.ai', perSandboxHost: true };
  const err = networkError(Object.assign(new Error('getaddrinfo ENOTFOUND sbx-1.sandbox.tensorlake.ai'), { code: 'ENOTFOUND' }), ctx);
  assert.equal(err.code, ErrorCodes.SANDBOX_NOT_FOUND);
  assert.match(err.message, /No sandbox "sbx-1"/);
  const other = networkError(Object.assign(new Error('getaddrinfo ENOTFOUND proxy.example'), { code: 'ENOTFOUND' }), { ...ctx, host: 'proxy.example', perSandboxHost: false });
  assert.equal(other.code, ErrorCodes.UNREACHABLE);
  // Through a CONNECT proxy a refused or unresolvable hop is the HTTP proxy's failure, with its own code.
  for (const code of ['ECONNREFUSED', 'ENOTFOUND']) {
    const viaProxy = networkError(Object.assign(new Error(code), { code }), { ...ctx, viaHttpProxy: '127.0.0.1:3128' });
    assert.equal(viaProxy.code, ErrorCodes.HTTP_PROXY, code);
    assert.match(viaProxy.message, /Cannot reach the HTTP proxy 127\.0\.0\.1:3128/);
  }
});

// ---- 502: a warning at startup, one line per failed connection, the listener keeps serving ----

test('502: a startup warning, then one line per failed connection naming peer, mapping and cause; later connections work', { timeout: 30_000 }, async () => {
  const server = await startServer();
  const remote = await freePort();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-1', `:${remote}`]);
  let service;
  try {
    assert.match(cli.stderr(), new RegExp(`warning Nothing is listening on port ${remote} inside sandbox sbx-1 yet`));
    assert.ok(cli.events.some((e) => e.event === 'warning' && /PORT_CLOSED/.test(e.code)), JSON.stringify(cli.events));

    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    const peer = `127.0.0.1:${socket.localPort}`;
    await once(socket, 'close');
    const error = await cli.waitFor((ev) => ev.find((e) => e.event === 'error'), 10_000, 'error event');
    assert.equal(error.code, ErrorCodes.PORT_CLOSED);
    assert.equal(error.fatal, false);
    assert.equal(error.peer, peer);
    const lines = cli.stderr().split('\n').filter((l) => l.includes(peer));
    assert.equal(lines.length, 1, cli.stderr());
    assert.ok(lines[0].includes(`${peer} -> sbx-1:${remote}`), lines[0]);
    assert.match(lines[0], new RegExp(`Nothing is listening on port ${remote} inside sandbox sbx-1`));

    // The port opens inside the "sandbox": the same listener now forwards.
    // Stopping the CLI below cuts the tunnel, which resets this target connection.
    service = net.createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    service.listen(remote, '127.0.0.1');
    await once(service, 'listening');
    const data = randomBytes(20_000);
    assert.equal(sha256(await echoRoundTrip(cli.port, data)), sha256(data));
  } finally {
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    service?.close();
    await server.close();
  }
});

// ---- 2: 400, the proxy rejected the port ----

test('exit 2: 400 says the proxy rejected the port and shows its error', async () => {
  const echo = await startEcho();
  const server = await startServer({ allow: [1] });
  try {
    const r = await runCli(['--proxy-url', server.url, 'sbx-1', String(echo.port)]);
    assertFriendly(r, 2, new RegExp(`rejected port ${echo.port}`), new RegExp(`port ${echo.port} is not allowed on this server`), /PORT_NOT_ALLOWED/);
  } finally {
    await server.close();
    await echo.close();
  }
});

// ---- 5: local port in use / permission denied ----

test('exit 5: a local port in use names the address and port and suggests :REMOTE', async () => {
  const blocker = net.createServer();
  const port = await listen(blocker);
  try {
    const r = await runCli(['--no-check', '--proxy-url', 'http://127.0.0.1:9', 'sbx-1', `127.0.0.1:${port}:5432`]);
    assertFriendly(r, 5, new RegExp(`127\\.0\\.0\\.1:${port}`), /already in use/, /try :5432/);
  } finally {
    blocker.close();
  }
});

test('exit 5: a named port taken on one loopback (a local server on 127.0.0.1 only) is refused, not half-forwarded', async (t) => {
  const v4 = net.createServer();
  const port = await listen(v4);
  try {
    // localhost would reach the local server for clients that resolve it to 127.0.0.1.
    const r = await runCli(['--no-check', '--proxy-url', 'http://127.0.0.1:9', 'sbx-1', `${port}:5432`]);
    assertFriendly(r, 5, new RegExp(`127\\.0\\.0\\.1:${port}`), /already in use/, /try :5432/, /--address ::1/);
    assert.doesNotMatch(r.stderr, /Forwarding/);
    // --address keeps its meaning: the free family alone is accepted when asked for.
    const cli = await startCli(['--no-check', '--address', '::1', '--proxy-url', 'http://127.0.0.1:9', 'sbx-1', `${port}:5432`]).catch((err) => err);
    if (cli instanceof Error) {
      t.diagnostic(`no ::1 here: ${cli.message}`);
    } else {
      assert.match(cli.stderr(), new RegExp(`Forwarding \\[::1\\]:${port}`));
      assert.equal((await cli.stop()).code, 0);
    }
  } finally {
    v4.close();
  }
});

test('exit 5: the default loopback bind fails when both 127.0.0.1 and ::1 are taken', async (t) => {
  const v4 = net.createServer();
  const port = await listen(v4);
  const v6 = net.createServer();
  try {
    v6.listen({ port, host: '::1', ipv6Only: true });
    await once(v6, 'listening');
  } catch {
    v4.close();
    t.skip('this machine has no ::1');
    return;
  }
  try {
    const r = await runCli(['--no-check', '--proxy-url', 'http://127.0.0.1:9', 'sbx-1', `${port}:5432`]);
    assertFriendly(r, 5, new RegExp(`:${port}`), /already in use/, /try :5432/);
  } finally {
    v4.close();
    v6.close();
  }
});

test('exit 5: permission denied on a privileged port names it and suggests :REMOTE', async (t) => {
  const setting = '/proc/sys/net/ipv4/ip_unprivileged_port_start';
  if (!existsSync(setting) || typeof process.getuid !== 'function') {
    t.skip(`reads ${setting} and runs the CLI as another user: Linux only`);
    return;
  }
  const start = Number(readFileSync(setting, 'utf8').trim());
  if (!(start > 80)) {
    t.skip(`ports from ${start} need no privileges on this machine`);
    return;
  }
  // Root may bind port 80, so run the CLI as nobody when the tests run as root.
  const r = await runCli(['--no-check', '--proxy-url', 'http://127.0.0.1:9', 'sbx-1', '127.0.0.1:80:5432'], isRoot ? { uid: 65534 } : {});
  assertFriendly(r, 5, /127\.0\.0\.1:80/, /permission denied/, /try :5432/);
});

// ---- 6: proxy unreachable, handshake timeout, TLS failure ----

test('exit 6 at once: a proxy URL that refuses the connection at start-up names the host, without retrying', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const started = Date.now();
  // A budget of 30 s, which retries would use up: a refusal at start-up is a wrong URL.
  const r = await runCli(['--connect-timeout', '30', '--proxy-url', `http://127.0.0.1:${port}`, 'sbx-1', '5432']);
  assertFriendly(r, 6, new RegExp(`Cannot reach the sandbox proxy at 127\\.0\\.0\\.1:${port}`), /ECONNREFUSED/, /nothing accepts connections/);
  assert.ok(Date.now() - started < 20_000, 'not after the connect timeout');
  // --stdio's one tunnel is its start-up too (an ssh ProxyCommand with a wrong URL).
  const stdioStarted = Date.now();
  const stdio = await runCli(['--stdio', '--connect-timeout', '30', '--proxy-url', `http://127.0.0.1:${port}`, 'sbx-1', '22']);
  assert.equal(stdio.code, 6, stdio.stderr);
  assert.match(stdio.stderr, /ECONNREFUSED/);
  assert.ok(Date.now() - stdioStarted < 20_000, 'not after the connect timeout');
});

test('exit 6: a proxy that accepts and never answers times out after --connect-timeout', { timeout: 30_000 }, async () => {
  const hole = await startBlackhole();
  try {
    const r = await runCli(['--connect-timeout', '1', '--proxy-url', hole.url, 'sbx-1', '5432']);
    assertFriendly(r, 6, /127\.0\.0\.1/, /in time/, /connect timeout/);
  } finally {
    await hole.close();
  }
});

test('exit 6: a self-signed certificate fails TLS, naming the host and NODE_EXTRA_CA_CERTS', { timeout: 30_000 }, async () => {
  const { cert, key } = makeSelfSigned();
  const server = https.createServer({ cert, key }, (req, res) => res.end());
  server.on('upgrade', (req, socket) => socket.destroy());
  const proxy = await serve(server, 'https');
  try {
    const r = await runCli(['--connect-timeout', '5', '--proxy-url', `https://localhost:${proxy.port}`, 'sbx-1', '5432']);
    assertFriendly(r, 6, /TLS/, /localhost/, /NODE_EXTRA_CA_CERTS/);
  } finally {
    await proxy.close();
  }
});

// ---- 1: anything else ----

test('exit 1: another status is one line with the status and the proxy error', async () => {
  const proxy = await startStatusProxy(418, { error: 'short and stout', code: 'TEAPOT' });
  try {
    const r = await runCli(['--proxy-url', proxy.url, 'sbx-1', '5432']);
    assertFriendly(r, 1, /418/, /short and stout/, /TEAPOT/);
  } finally {
    await proxy.close();
  }
});
