// tl-tunnel-server as a newcomer meets it (issue 12): a usable "Try:" line, seconds like the client,
// tokens a client can send, a request log that never shows the token, and no tunnel loop through
// tl-tunnel's own listener.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { WebSocket } from 'ws';
import { CANARY_KEY, SERVER_CLI, cliEnv, eventually, freePort, runCli, startEcho, startServer, echoRoundTrip, startCli } from './helpers/index.js';

const TUNNEL = '/api/v1/tunnels/tcp';

/** Starts tl-tunnel-server; resolves once it listens, with its JSON line and a live stderr. */
async function serverCli(args, env = {}) {
  const child = spawn(process.execPath, [SERVER_CLI, '--json', '--port', '0', ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  await eventually(() => stdout.includes('\n') && stderr.includes('Try:'), { timeoutMs: 10_000, what: 'tl-tunnel-server listening' });
  const event = JSON.parse(stdout.split('\n')[0]);
  return {
    event,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGINT');
      if (child.exitCode === null) await once(child, 'close');
      assert.ok(!stdout.includes(CANARY_KEY) && !stderr.includes(CANARY_KEY), `the token is never printed:\n${stderr}`);
      return stderr;
    },
  };
}

function tryLine(stderr) {
  return stderr.split('\n').find((l) => l.startsWith('Try: '));
}

test('the Try: line is a command that works, with the generated token, also for --host 0.0.0.0', { timeout: 60_000 }, async () => {
  const echo = await startEcho();
  const server = await serverCli(['--host', '0.0.0.0']);
  try {
    const line = tryLine(server.stderr());
    assert.ok(!line.includes('<token>'), line);
    const key = /TENSORLAKE_API_KEY=(\S+)/.exec(line)[1];
    assert.equal(key, server.event.token, 'the generated token itself');
    const proxyUrl = /--proxy-url (\S+)/.exec(line)[1];
    assert.equal(proxyUrl, `http://127.0.0.1:${server.event.port}`);
    // Run it as printed (with a real port for <port>): the client accepts the URL and forwards.
    const cli = await startCli(['--proxy-url', proxyUrl, 'local', `:${echo.port}`], { env: { TENSORLAKE_API_KEY: key } });
    try {
      const data = Buffer.from('hello through the printed command');
      assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    } finally {
      assert.equal((await cli.stop()).code, 0);
    }
  } finally {
    await server.stop();
    await echo.close();
  }
  // A token the user chose is not echoed back.
  const own = await serverCli(['--token', CANARY_KEY]);
  assert.match(tryLine(own.stderr()), /TENSORLAKE_API_KEY=<your --token> tl-tunnel --proxy-url http:\/\/127\.0\.0\.1:\d+ local <port>/);
  await own.stop();
  const fromEnv = await serverCli([], { TL_TUNNEL_SERVER_TOKEN: CANARY_KEY });
  assert.match(tryLine(fromEnv.stderr()), /^Try: TENSORLAKE_API_KEY="\$TL_TUNNEL_SERVER_TOKEN" tl-tunnel --proxy-url/);
  assert.equal(fromEnv.event.token, undefined, 'a token the user gave is not printed in --json either');
  await fromEnv.stop();
});

test('a token no client can send is refused with exit 2, naming where it came from', async () => {
  for (const [args, env, name] of [
    [['--token', 'dev token'], {}, '--token'],
    [['--token', 'dev\ttoken'], {}, '--token'],
    [[], { TL_TUNNEL_SERVER_TOKEN: 'caf\u00e9' }, 'TL_TUNNEL_SERVER_TOKEN'],
  ]) {
    const r = await runCli(['--port', '0', ...args], { bin: SERVER_CLI, env, timeoutMs: 10_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.includes(name) && !r.stderr.includes('dev token'), r.stderr);
  }
  const { createTunnelServer } = await import('../dist/index.js');
  await assert.rejects(createTunnelServer({ token: 'a b' }), (err) => err.code === 'TL_ERR_USAGE' && !err.message.includes('a b'));
});

test('--idle-timeout is in seconds, like the client options', { timeout: 30_000 }, async () => {
  const echo = await startEcho();
  const server = await serverCli(['--token', CANARY_KEY, '--idle-timeout', '0.3']);
  try {
    const ws = new WebSocket(`${server.event.url}${TUNNEL}?port=${echo.port}`, { headers: { authorization: `Bearer ${CANARY_KEY}` } });
    ws.on('error', () => {});
    await once(ws, 'open');
    const [code] = await once(ws, 'close');
    assert.equal(code, 1001, 'closed for idleness after 0.3 s, not 0.3 ms or never');
  } finally {
    await server.stop();
    await echo.close();
  }
  for (const bad of ['-1', '1s', '86401', 'abc']) {
    const r = await runCli(['--port', '0', '--idle-timeout', bad], { bin: SERVER_CLI, timeoutMs: 10_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--idle-timeout takes a number of seconds/);
  }
});

test('-v logs one line per upgrade: client, method, path, port, status; never the token', { timeout: 30_000 }, async () => {
  const echo = await startEcho();
  const closed = await freePort();
  const server = await serverCli(['--token', CANARY_KEY, '-v']);
  try {
    const open = new WebSocket(`${server.event.url}${TUNNEL}?port=${echo.port}`, { headers: { authorization: `Bearer ${CANARY_KEY}` } });
    await once(open, 'open');
    open.close();
    for (const [query, auth] of [[`port=${closed}`, CANARY_KEY], [`port=${echo.port}&token=${CANARY_KEY}`, 'wrong-token']]) {
      const ws = new WebSocket(`${server.event.url}${TUNNEL}?${query}`, { headers: { authorization: `Bearer ${auth}` } });
      ws.on('error', () => {});
      await new Promise((resolve) => ws.on('close', resolve));
    }
    await eventually(() => server.stderr().split('\n').filter((l) => l.includes(' GET ')).length === 3, { what: 'three request lines' });
    const lines = server.stderr().split('\n').filter((l) => l.includes(' GET '));
    assert.match(lines[0], new RegExp(`^127\\.0\\.0\\.1:\\d+ GET ${TUNNEL} port ${echo.port} -> 101 tunnel #1$`));
    assert.match(lines[1], new RegExp(`^127\\.0\\.0\\.1:\\d+ GET ${TUNNEL} port ${closed} -> 502 TARGET_UNREACHABLE$`));
    assert.match(lines[2], new RegExp(`^127\\.0\\.0\\.1:\\d+ GET ${TUNNEL} port ${echo.port} -> 401 UNAUTHORIZED$`));
  } finally {
    await server.stop(); // asserts the canary (sent in a query string above) is nowhere in the output
    await echo.close();
  }
});

test('forwarding a port to the same port through a proxy on this machine is refused, not looped', { timeout: 30_000 }, async () => {
  const server = await startServer();
  let upgrades = 0;
  server.on('open', () => (upgrades += 1));
  try {
    const port = await freePort();
    const r = await runCli(['--proxy-url', server.url, 'local', String(port)], { timeoutMs: 15_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`Port ${port} would loop: .*forward another local port`));
    assert.equal(upgrades, 0, 'no tunnel was opened');
    // Nothing stays bound: the port is free again.
    const probe = net.createServer();
    probe.listen(port, '127.0.0.1');
    await once(probe, 'listening');
    probe.close();

    // When a service holds 127.0.0.1:PORT, the port is refused as taken (exit 5, not a loop); with
    // --address ::1 tl-tunnel takes [::1]:PORT, and the proxy reaches the service: nothing loops.
    const echo = await startEcho();
    const taken = await runCli(['--proxy-url', server.url, 'local', String(echo.port)], { timeoutMs: 15_000 });
    assert.equal(taken.code, 5, taken.stderr);
    assert.match(taken.stderr, /already in use.*--address ::1/);
    const cli = await startCli(['--address', '::1', '--proxy-url', server.url, 'local', String(echo.port)]);
    try {
      assert.deepEqual(cli.events.find((e) => e.event === 'listening').addresses.map((a) => a.address), ['::1']);
      const data = Buffer.from('via ::1 to the service on 127.0.0.1');
      assert.deepEqual(await echoRoundTrip(cli.port, data, { host: '::1' }), data);
    } finally {
      assert.equal((await cli.stop()).code, 0);
      await echo.close();
    }
  } finally {
    await server.close();
  }
});
