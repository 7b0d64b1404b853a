// The sandbox lookup, end to end: the built CLI looks the sandbox up in the reference server's
// control plane (TENSORLAKE_SANDBOX_API_URL), waits, resumes or refuses by status, and opens its
// tunnels to the record's sandbox_url with the canonical id, the routing hint and, on loopback, the
// Host name a local proxy routes on.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import net from 'node:net';
import { socks5Connect } from './helpers/socks.js';
import { startTinyproxy } from './helpers/proxies.js';
import { CANARY_KEY, startEcho, startServer, startCli, runCli, freePort, listen, randomBytes, echoRoundTrip, eventually, sandboxOf } from './helpers/index.js';
import { needsTools } from './helpers/services.js';

const toolSkip = needsTools('tinyproxy');

const ID = 'sbx4k2m9q7w1z8x3c5v6';

function record(extra = {}) {
  return { id: ID, name: 'my-db', status: 'running', routing_hint: 'cell-7/host-3', ...extra };
}

/** The reference server with a control plane over `records`, recording every request it gets. */
async function controlPlane(records, options = {}) {
  const server = await startServer({ sandboxes: records, ...options });
  const control = [];
  const upgrades = [];
  server.on('control', (req) => control.push({ method: req.method, url: req.url, headers: req.headers }));
  server.on('request', (req) => upgrades.push(req.headers));
  return { server, control, upgrades, env: { TENSORLAKE_SANDBOX_API_URL: server.url } };
}

/** Runs `fn({ echo, cp })` with an echo service and a control plane over `records`, both closed afterwards. */
async function withEchoAndControlPlane(records, fn) {
  const echo = await startEcho();
  const cp = await controlPlane(records);
  try {
    return await fn({ echo, cp });
  } finally {
    await cp.server.close();
    await echo.close();
  }
}

/** A connection the CLI is expected to cut: resolves when it closes, however it closes. */
function cutConnection(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('x'));
    socket.on('error', () => {});
    socket.on('close', resolve);
  });
}

async function post(url) {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${CANARY_KEY}` } });
  assert.equal(res.status, 200, await res.text());
}

test('a running sandbox by name: canonical id, routing hint and the loopback Host on every upgrade', () =>
  withEchoAndControlPlane([record()], async ({ echo, cp }) => {
    const cli = await startCli(['-v', 'my-db', `:${echo.port}`], { env: cp.env });
    const data = randomBytes(20_000);
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    // The lookup: GET /sandboxes/<name>, JSON, Bearer, no scope headers with an API key.
    assert.equal(cp.control.length, 1);
    assert.equal(cp.control[0].method, 'GET');
    assert.equal(cp.control[0].url, '/sandboxes/my-db');
    assert.equal(cp.control[0].headers.accept, 'application/json');
    assert.equal(cp.control[0].headers.authorization, `Bearer ${CANARY_KEY}`);
    assert.equal(cp.control[0].headers['x-forwarded-organization-id'], undefined);
    assert.equal(cp.control[0].headers['x-forwarded-project-id'], undefined);
    assert.ok(cp.upgrades.length >= 2);
    for (const h of cp.upgrades) {
      assert.equal(sandboxOf(h), ID);
      assert.equal(h['x-tensorlake-route-hint'], 'cell-7/host-3');
      assert.equal(h.host, `${ID}.local`);
    }
    assert.match(r.stderr, new RegExp(`Sandbox my-db: id ${ID}, running`));
    assert.match(r.stderr, /from the sandbox record's sandbox_url/);
    const ev = r.events.find((e) => e.event === 'sandbox');
    assert.deepEqual({ ...ev, time: undefined }, { event: 'sandbox', time: undefined, sandbox: 'my-db', id: ID, status: 'running', proxyUrl: cp.server.url });
  }));

test('pending: waits (a line when stderr is not a terminal) until the sandbox runs, then forwards', () =>
  withEchoAndControlPlane([record({ status: 'pending', transitions: [{ after_ms: 1200, status: 'running' }] })], async ({ echo, cp }) => {
    const cli = await startCli(['my-db', `:${echo.port}`], { env: cp.env });
    assert.match(cli.stderr(), /Sandbox my-db is pending; waiting for it to run/);
    assert.ok(cp.control.length >= 2, 'polled the record');
    const data = randomBytes(1000);
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    assert.equal((await cli.stop()).code, 0);
  }));

test('any other status (snapshotting) is waited for like pending', () =>
  withEchoAndControlPlane([record({ status: 'snapshotting', transitions: [{ after_ms: 300, status: 'running' }] })], async ({ echo, cp }) => {
    const cli = await startCli(['my-db', `:${echo.port}`], { env: cp.env });
    assert.match(cli.stderr(), /is snapshotting; waiting/);
    assert.equal((await cli.stop()).code, 0);
  }));

test('pending for longer than --wait: exit 4 saying how long it waited', async () => {
  const cp = await controlPlane([record({ status: 'pending' })]);
  try {
    const r = await runCli(['--wait', '1.2', 'my-db', '5432'], { env: cp.env });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /Sandbox my-db is still pending after 1\.2 s/);
  } finally {
    await cp.server.close();
  }
});

test('suspended: exit 4 with the hint; --resume resumes it, waits, and forwards', () =>
  withEchoAndControlPlane([record({ status: 'suspended', resume_ms: 600 })], async ({ echo, cp }) => {
    const refused = await runCli(['my-db', '5432'], { env: cp.env });
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /^error Sandbox my-db is suspended; run again with --resume \(or: tl sbx resume my-db\)$/m);
    assert.ok(cp.control.every((c) => c.method === 'GET'), 'nothing resumed without --resume');

    const cli = await startCli(['--resume', 'my-db', `:${echo.port}`], { env: cp.env });
    assert.ok(cp.control.some((c) => c.method === 'POST' && c.url === `/sandboxes/${ID}/resume`), 'resumed by canonical id');
    assert.match(cli.stderr(), /Resuming sandbox my-db/);
    const data = randomBytes(1000);
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    assert.equal((await cli.stop()).code, 0);
  }));

test('terminated: exit 4 naming the termination reason, even with --resume', async () => {
  const cp = await controlPlane([record({ status: 'terminated', termination_reason: 'OutOfMemory' })]);
  try {
    for (const extra of [[], ['--resume']]) {
      const r = await runCli([...extra, 'my-db', '5432'], { env: cp.env });
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /Sandbox my-db is terminated \(OutOfMemory\)/);
      const json = await runCli(['--json', ...extra, 'my-db', '5432'], { env: cp.env });
      assert.equal(JSON.parse(json.stdout.trim().split('\n').at(-1)).code, 'TL_ERR_SANDBOX_NOT_RUNNING');
    }
    assert.ok(cp.control.every((c) => c.method === 'GET'));
  } finally {
    await cp.server.close();
  }
});

test('lookup errors: 401 is exit 3 naming the source, 404 is exit 4, unreachable is exit 6', async () => {
  const cp = await controlPlane([record()], { token: 'a-different-token-0123456789' });
  try {
    const denied = await runCli(['my-db', '5432'], { env: cp.env });
    assert.equal(denied.code, 3, denied.stderr);
    assert.match(denied.stderr, /rejected the credentials \(401\).*the API key from TENSORLAKE_API_KEY was refused/);
    const flag = await runCli(['--api-key', `${CANARY_KEY}x`, 'my-db', '5432'], { env: cp.env });
    assert.equal(flag.code, 3, flag.stderr);
    assert.match(flag.stderr, /the API key from --api-key was refused/);
  } finally {
    await cp.server.close();
  }
  const found = await controlPlane([record()]);
  try {
    const r = await runCli(['nope', '5432'], { env: found.env });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /No sandbox named nope in this project/);
  } finally {
    await found.server.close();
  }
  const dead = await freePort();
  const r = await runCli(['my-db', '5432'], { env: { TENSORLAKE_SANDBOX_API_URL: `http://127.0.0.1:${dead}` } });
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, new RegExp(`Cannot reach the sandbox API at 127\\.0\\.0\\.1:${dead} \\(ECONNREFUSED\\)`));
});

test('lookup answers that are not a record: other statuses (exit 1 with the error), non-JSON, no id, a bad sandbox_url', async () => {
  const answers = {
    '/sandboxes/s500': [500, '{"error":"database is down\\u001b[2J","code":"INTERNAL"}'],
    '/sandboxes/s429': [429, 'slow down'],
    '/sandboxes/html': [200, '<html>login</html>'],
    '/sandboxes/array': [200, '[1,2]'],
    '/sandboxes/badid': [200, '{"sandbox_id":"evil.example.com/x","status":"running"}'],
    '/sandboxes/badurl': [200, '{"sandbox_id":"sbx1","status":"running","sandbox_url":"http://10.9.8.7:1"}'],
  };
  const server = http.createServer((req, res) => {
    const [status, body] = answers[req.url] ?? [404, ''];
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  const port = await listen(server);
  const env = { TENSORLAKE_SANDBOX_API_URL: `http://127.0.0.1:${port}` };
  try {
    const expect = {
      s500: /HTTP 500: database is down/,
      s429: /HTTP 429/,
      html: /did not answer with JSON/,
      array: /not a sandbox record/,
      badid: /not a valid sandbox id/,
      badurl: /sandbox_url that cannot be used.*clear text/,
    };
    for (const [name, pattern] of Object.entries(expect)) {
      // --connect-timeout 1: the busy answers (500, 429) are asked again for that long, then reported.
      const r = await runCli(['--connect-timeout', '1', name, '5432'], { env });
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, pattern, name);
      assert.doesNotMatch(r.stderr, /\x1b|at .*\.js/, 'no escape sequences, no stack traces');
    }
  } finally {
    server.close();
  }
});

test('an explicit --proxy-url: no lookup; with TENSORLAKE_SANDBOX_API_URL the lookup runs and the explicit base still wins', async () => {
  const echo = await startEcho();
  const dead = await freePort();
  const cp = await controlPlane([record({ sandbox_url: `http://127.0.0.1:${dead}` })]);
  try {
    const direct = await startCli(['--proxy-url', cp.server.url, 'my-db', `:${echo.port}`]);
    assert.equal((await direct.stop()).code, 0);
    assert.equal(cp.control.length, 0, 'no lookup');
    assert.equal(sandboxOf(cp.upgrades[0]), 'my-db');

    const looked = await startCli(['-v', '--proxy-url', cp.server.url, 'my-db', `:${echo.port}`], { env: cp.env });
    const data = randomBytes(1000);
    assert.deepEqual(await echoRoundTrip(looked.port, data), data);
    const r = await looked.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cp.control.length, 1);
    assert.equal(sandboxOf(cp.upgrades.at(-1)), ID);
    assert.match(r.stderr, /Proxy http:\/\/127\.0\.0\.1:\d+ \(from --proxy-url: no lookup\)/);
  } finally {
    await cp.server.close();
    await echo.close();
  }
});

test('TENSORLAKE_SANDBOX_PROXY_URL is a fallback, as upstream: the lookup still runs and the record\'s sandbox_url wins; the variable serves a record without one', async () => {
  const echo = await startEcho();
  const dead = await freePort();
  const cp = await controlPlane([record()]);
  const bare = await controlPlane([record({ sandbox_url: null })]);
  try {
    // The variable names a proxy where nothing listens: used, the tunnel would fail.
    const withUrl = await startCli(['-v', 'my-db', `:${echo.port}`], { env: { ...cp.env, TENSORLAKE_SANDBOX_PROXY_URL: `http://127.0.0.1:${dead}` } });
    const data = randomBytes(1000);
    assert.deepEqual(await echoRoundTrip(withUrl.port, data), data);
    const r = await withUrl.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cp.control.length, 1, 'looked up although the variable is set');
    assert.equal(sandboxOf(cp.upgrades.at(-1)), ID, 'the canonical id');
    assert.equal(cp.upgrades.at(-1)['x-tensorlake-route-hint'], 'cell-7/host-3');
    assert.match(r.stderr, /\(from the sandbox record's sandbox_url\)/);

    const withoutUrl = await startCli(['-v', 'my-db', `:${echo.port}`], { env: { ...bare.env, TENSORLAKE_SANDBOX_PROXY_URL: cp.server.url } });
    assert.deepEqual(await echoRoundTrip(withoutUrl.port, data), data);
    const r2 = await withoutUrl.stop();
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(bare.control.length, 1);
    assert.match(r2.stderr, /has no sandbox_url; using TENSORLAKE_SANDBOX_PROXY_URL/);
    assert.match(r2.stderr, /\(from TENSORLAKE_SANDBOX_PROXY_URL\)/);
  } finally {
    await cp.server.close();
    await bare.server.close();
    await echo.close();
  }
});

test('a record without sandbox_url: the documented default host, said with -v', async () => {
  const cp = await controlPlane([record({ sandbox_url: null })]);
  try {
    // --no-check: nothing is sent to the (real, remote) default host.
    const cli = await startCli(['-v', '--no-check', 'my-db', ':5432'], { env: cp.env });
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`has no sandbox_url; using https://${ID}\\.sandbox\\.tensorlake\\.ai`));
    assert.match(r.stderr, new RegExp(`Tunnel URL wss://${ID}\\.sandbox\\.tensorlake\\.ai/api/v1/tunnels/tcp\\?port=5432`));
  } finally {
    await cp.server.close();
  }
});

test('local development: a localhost API URL means no lookup, TENSORLAKE_SANDBOX_PROXY_URL or http://localhost:9443, Host <sandbox>.local', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const hosts = [];
  server.on('request', (req) => hosts.push(req.headers.host));
  try {
    const viaEnv = await startCli(['my-box', `:${echo.port}`], { env: { TENSORLAKE_API_URL: 'http://localhost:8900', TENSORLAKE_SANDBOX_PROXY_URL: server.url } });
    assert.equal((await viaEnv.stop()).code, 0);
    const viaLocalhost = await startCli(['--proxy-url', `http://localhost:${server.port}`, 'my-box', `:${echo.port}`]);
    assert.equal((await viaLocalhost.stop()).code, 0);
    assert.deepEqual(hosts, ['my-box.local', 'my-box.local']);
    const byDefault = await startCli(['-v', '--no-check', '--api-url', 'http://127.0.0.1:8900', 'my-box', ':5432']);
    const r = await byDefault.stop();
    assert.match(r.stderr, /Proxy http:\/\/localhost:9443 \(from the local development default/);
  } finally {
    await server.close();
    await echo.close();
  }
});

test('while running: a burst of failures is explained by one lookup (at most every 10 s); --resume lets them through', async () => {
  const echo = await startEcho();
  const cp = await controlPlane([record()]);
  try {
    const cli = await startCli(['my-db', `:${echo.port}`], { env: cp.env });
    try {
      const before = cp.control.length;
      await post(`${cp.server.url}/sandboxes/${ID}/suspend`);
      await Promise.all([cutConnection(cli.port), cutConnection(cli.port)]);
      await cutConnection(cli.port);
      const errors = await cli.waitFor((ev) => ev.filter((e) => e.event === 'error').length >= 3 && ev.filter((e) => e.event === 'error'));
      for (const e of errors) {
        assert.equal(e.code, 'TL_ERR_SANDBOX_NOT_RUNNING');
        assert.match(e.message, /Sandbox my-db was suspended; run again with --resume/);
      }
      assert.equal(cp.control.filter((c) => c.method === 'GET').length - before, 1, 'one lookup for the burst');
    } finally {
      const r = await cli.stop();
      assert.match(r.stderr, /Sandbox my-db was suspended/);
    }
  } finally {
    await cp.server.close();
  }
  const resumable = await controlPlane([record({ resume_ms: 500 })]);
  try {
    const cli = await startCli(['--resume', 'my-db', `:${echo.port}`], { env: resumable.env });
    const data = randomBytes(5000);
    let results;
    let r;
    try {
      await post(`${resumable.server.url}/sandboxes/${ID}/suspend`);
      results = await Promise.all([echoRoundTrip(cli.port, data), echoRoundTrip(cli.port, data)]);
      // Idle for a second, the tunnels' stop is not an interruption.
      await new Promise((resolve) => setTimeout(resolve, 1200));
    } finally {
      r = await cli.stop();
    }
    assert.deepEqual(results[0], data);
    assert.deepEqual(results[1], data);
    assert.equal(resumable.control.filter((c) => c.method === 'POST' && c.url.endsWith('/resume')).length, 1, 'resumed once');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.events.filter((e) => e.event === 'error').length, 0, r.stdout);
    assert.match(r.stderr, /Resuming sandbox my-db/);
  } finally {
    await resumable.server.close();
    await echo.close();
  }
});

test('proxy mode (-D): each sandbox is looked up once; while running, failures are explained, and --resume resumes', async () => {
  const echo = await startEcho();
  const exchange = async (port, host) => {
    const { code, socket } = await socks5Connect(port, host, echo.port);
    if (code !== 0) {
      socket.destroy();
      return { code };
    }
    socket.write('ping');
    const reply = once(socket, 'data');
    // socks5Connect leaves the socket paused after the SOCKS reply.
    socket.resume();
    const [data] = await reply;
    socket.destroy();
    return { code, data: data.toString() };
  };
  for (const resume of [false, true]) {
    const cp = await controlPlane([record({ resume_ms: 300 })]);
    const cli = await startCli([...(resume ? ['--resume'] : []), '-D', '0'], { env: cp.env });
    try {
      assert.deepEqual(await exchange(cli.port, 'my-db'), { code: 0, data: 'ping' });
      assert.equal(sandboxOf(cp.upgrades.at(-1)), ID);
      await post(`${cp.server.url}/sandboxes/${ID}/suspend`);
      const after = await exchange(cli.port, 'my-db');
      if (resume) {
        assert.deepEqual(after, { code: 0, data: 'ping' });
        assert.equal(cp.control.filter((c) => c.method === 'POST' && c.url.endsWith('/resume')).length, 1);
      } else {
        assert.notEqual(after.code, 0);
        const error = await cli.waitFor((ev) => ev.find((e) => e.event === 'error'));
        assert.match(error.message, /Sandbox my-db was suspended; run again with --resume/);
      }
      assert.equal(cp.control.filter((c) => c.method === 'GET' && c.url === '/sandboxes/my-db').length, 1, 'looked up once');
    } finally {
      const r = await cli.stop();
      assert.equal(r.code, 0, r.stderr);
      await cp.server.close();
    }
  }
  await echo.close();
});

test('the lookup goes through the HTTP proxy too (--proxy / HTTP_PROXY), as the tunnels do', { skip: toolSkip }, async () => {
  const echo = await startEcho();
  const cp = await controlPlane([record()]);
  const proxy = await startTinyproxy();
  const cli = await startCli(['-v', 'my-db', `:${echo.port}`], { env: { ...cp.env, HTTP_PROXY: proxy.url } });
  try {
    const data = randomBytes(1000);
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    // The lookup, the startup check and the connection: three CONNECTs to the one host.
    await eventually(() => proxy.connects(`127.0.0.1:${cp.server.port}`) >= 3, { what: 'three CONNECTs in the tinyproxy log' });
    assert.equal(cp.control.length, 1);
  } finally {
    const r = await cli.stop();
    await proxy.close();
    await cp.server.close();
    await echo.close();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /HTTP proxy http:\/\/127\.0\.0\.1:\d+ for the sandbox lookup \(from HTTP_PROXY\)/);
  }
});
