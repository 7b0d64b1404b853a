// --json: one JSON event per line on stdout and nothing else; the schema a script relies on.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startEcho, startServer, startCli, runCli, freePort, randomBytes, CANARY_KEY } from './helpers/index.js';
import { droppedConnection } from './helpers/connections.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Every stdout line is one JSON object with `event` and `time`; returns them. */
function parseStdout(stdout) {
  assert.ok(stdout === '' || stdout.endsWith('\n'), 'stdout ends with a newline');
  const lines = stdout.split('\n').slice(0, -1);
  return lines.map((line) => {
    const event = JSON.parse(line);
    assert.equal(typeof event, 'object');
    assert.equal(typeof event.event, 'string', line);
    assert.match(event.time, ISO, line);
    return event;
  });
}

/** Sends `data`, reads it back, closes; returns the local port the connection came from. */
async function roundTrip(port, data) {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const localPort = socket.localPort;
  const chunks = [];
  let received = 0;
  socket.on('data', (d) => {
    chunks.push(d);
    received += d.length;
    if (received >= data.length) socket.end();
  });
  socket.write(data);
  await once(socket, 'close');
  assert.ok(Buffer.concat(chunks).equals(data), 'echoed bytes match');
  return localPort;
}

test('--json: listening, open, close, error, warning and stopped events carry the documented fields', async () => {
  const echo = await startEcho();
  const dead = await freePort();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-json', `:${echo.port}`, `:${dead}`], { mappings: 2 });
  try {
    const listening = cli.events.filter((e) => e.event === 'listening');
    assert.equal(listening.length, 2);
    for (const [i, remotePort] of [echo.port, dead].entries()) {
      const e = listening[i];
      assert.equal(e.sandbox, 'sbx-json');
      assert.equal(e.remotePort, remotePort);
      assert.ok(e.addresses.length >= 1);
      for (const a of e.addresses) {
        assert.ok(['127.0.0.1', '::1'].includes(a.address), a.address);
        assert.equal(a.family, a.address === '::1' ? 'IPv6' : 'IPv4');
        // :REMOTE asked for a free port: the event carries the one really bound.
        assert.ok(Number.isInteger(a.port) && a.port > 0 && a.port !== 0);
        assert.equal(a.port, e.addresses[0].port);
      }
    }
    // The startup check found nothing on the dead port: a warning, not a failure.
    const warning = cli.events.find((e) => e.event === 'warning');
    assert.equal(warning?.code, 'TL_WARN_PORT_CLOSED');
    assert.match(warning.message, new RegExp(`port ${dead}`));

    const data = randomBytes(50_000);
    const goodPeer = await roundTrip(cli.ports[0], data);
    const badPeer = await droppedConnection(cli.ports[1]);
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close').length >= 2, 10_000, 'two close events');

    const open = cli.events.find((e) => e.event === 'open');
    assert.deepEqual(
      { id: open.id, peer: open.peer, local: open.local, sandbox: open.sandbox, remotePort: open.remotePort },
      { id: open.id, peer: `127.0.0.1:${goodPeer}`, local: `127.0.0.1:${cli.ports[0]}`, sandbox: 'sbx-json', remotePort: echo.port },
    );
    assert.ok(Number.isInteger(open.id));

    const closes = cli.events.filter((e) => e.event === 'close');
    const good = closes.find((e) => e.id === open.id);
    assert.equal(good.peer, `127.0.0.1:${goodPeer}`);
    assert.equal(good.remotePort, echo.port);
    assert.equal(good.bytesSent, data.length);
    assert.equal(good.bytesReceived, data.length);
    assert.ok(Number.isInteger(good.durationMs) && good.durationMs >= 0);
    assert.equal(typeof good.reason, 'string');
    assert.equal(good.code, undefined);

    const bad = closes.find((e) => e.id !== open.id);
    assert.equal(bad.peer, `127.0.0.1:${badPeer}`);
    assert.equal(bad.remotePort, dead);
    assert.equal(bad.bytesSent, 0);
    assert.equal(bad.bytesReceived, 0);
    assert.equal(bad.code, 'TL_ERR_PORT_CLOSED');

    const error = cli.events.find((e) => e.event === 'error');
    assert.equal(error.code, 'TL_ERR_PORT_CLOSED');
    assert.equal(error.status, 502);
    assert.equal(error.proxyCode, 'TARGET_UNREACHABLE');
    assert.equal(typeof error.proxyError, 'string');
    assert.equal(typeof error.message, 'string');
    assert.equal(error.fatal, false);
    assert.equal(error.id, bad.id);
    assert.equal(error.peer, bad.peer);
    assert.equal(error.remotePort, dead);
  } finally {
    const r = await cli.stop();
    await server.close();
    await echo.close();
    assert.equal(r.code, 0, r.stderr);
    const events = parseStdout(r.stdout);
    assert.equal(events.length, r.events.length);
    const stopped = events.at(-1);
    assert.equal(stopped.event, 'stopped');
    assert.equal(stopped.connections, 2);
    assert.equal(stopped.failed, 1);
    assert.equal(stopped.bytesSent, 50_000);
    assert.equal(stopped.bytesReceived, 50_000);
    assert.deepEqual(stopped.errors, { TL_ERR_PORT_CLOSED: 1 });
    // Human lines stay on stderr.
    assert.match(r.stderr, /Forwarding 127\.0\.0\.1:\d+ -> sbx-json:/);
    assert.ok(!r.stdout.includes('Forwarding'));
  }
});

test('--json: a fatal error is one error event with the proxy status, error and code', async () => {
  const echo = await startEcho();
  const server = await startServer({ token: 'not-the-canary-token' });
  try {
    const r = await runCli(['--json', '--proxy-url', server.url, 'sbx-json', `${echo.port}`]);
    assert.equal(r.code, 3, r.stderr);
    const events = parseStdout(r.stdout);
    assert.equal(events.length, 1, r.stdout);
    const [e] = events;
    assert.equal(e.event, 'error');
    assert.equal(e.code, 'TL_ERR_AUTH');
    assert.equal(e.status, 401);
    assert.equal(e.proxyCode, 'UNAUTHORIZED');
    assert.equal(typeof e.proxyError, 'string');
    assert.equal(e.fatal, true);
    assert.match(e.message, /rejected the credentials/);
    assert.ok(!r.stdout.includes(CANARY_KEY));
  } finally {
    await server.close();
    await echo.close();
  }
});

test('--json: usage errors are JSON too, and --json cannot share stdout with --stdio', async () => {
  const bad = await runCli(['--json', 'sbx-json', 'not-a-port']);
  assert.equal(bad.code, 2);
  const [e] = parseStdout(bad.stdout);
  assert.equal(e.event, 'error');
  assert.equal(e.code, 'TL_ERR_USAGE');
  assert.match(e.message, /not-a-port/);
  assert.equal(e.fatal, true);

  const unknown = await runCli(['--json', '--no-such-option', 'sbx-json', '5432']);
  assert.equal(unknown.code, 2);
  assert.equal(parseStdout(unknown.stdout)[0]?.code, 'TL_ERR_USAGE');

  const both = await runCli(['--json', '--stdio', 'sbx-json', '22']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--stdio or --json/);
});
