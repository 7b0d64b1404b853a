// Ctrl-C prints one summary line: connections served, bytes each way, errors by kind.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEcho, startServer, startCli, echoRoundTrip, freePort } from './helpers/index.js';
import { droppedConnection } from './helpers/connections.js';

test('Ctrl-C: one line with connections served and failed, bytes each way and errors by kind', async () => {
  const echo = await startEcho();
  const dead = await freePort();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-sum', `:${echo.port}`, `:${dead}`], { mappings: 2 });
  try {
    await echoRoundTrip(cli.ports[0], Buffer.alloc(300, 1));
    await echoRoundTrip(cli.ports[0], Buffer.alloc(700, 2));
    await droppedConnection(cli.ports[1]);
    await droppedConnection(cli.ports[1]);
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close').length >= 4, 10_000, 'four closes');
  } finally {
    const r = await cli.stop('SIGINT');
    await server.close();
    await echo.close();
    assert.equal(r.code, 0, r.stderr);
    const summary = r.stderr.split('\n').filter((l) => l.startsWith('Stopped'));
    assert.deepEqual(summary, ['Stopped: 2 connections served, 2 failed; 1000 B sent, 1000 B received; errors: port closed ×2']);
    const stopped = r.events.at(-1);
    assert.deepEqual(
      { event: stopped.event, connections: stopped.connections, failed: stopped.failed, bytesSent: stopped.bytesSent, bytesReceived: stopped.bytesReceived, errors: stopped.errors },
      { event: 'stopped', connections: 4, failed: 2, bytesSent: 1000, bytesReceived: 1000, errors: { TL_ERR_PORT_CLOSED: 2 } },
    );
  }
});

test('SIGTERM stops the same way; an idle run says so', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-sum', `:${echo.port}`]);
  const r = await cli.stop('SIGTERM');
  await server.close();
  await echo.close();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^Stopped: 0 connections served; 0 B sent, 0 B received; no errors$/m);
});

test('Ctrl-C with a tunnel open: it is closed, counted, and the summary follows', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-sum', `:${echo.port}`]);
  const socket = net.connect(cli.port, '127.0.0.1');
  socket.on('error', () => {});
  try {
    socket.write('x'.repeat(2048));
    await cli.waitFor((ev) => ev.some((e) => e.event === 'open'), 10_000, 'open');
    await new Promise((resolve) => {
      let n = 0;
      socket.on('data', (d) => {
        n += d.length;
        if (n >= 2048) resolve();
      });
    });
    // An exchange that is complete (like redis-cli PING), stopped 0.3 s later: nothing was queued
    // either way, so it was closed by the stop, not cut (a busy tunnel is, see integrity.test.js).
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    const r = await cli.stop('SIGINT');
    socket.destroy();
    await server.close();
    await echo.close();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^Stopped: 1 connection served; 2\.0 KiB sent, 2\.0 KiB received; no errors$/m);
    const close = r.events.find((e) => e.event === 'close');
    assert.equal(close.reason, 'closed by stop');
    assert.equal(close.code, undefined, 'no error code on a tunnel the stop did not cut');
    assert.doesNotMatch(r.stderr, /interrupted|cut|failed/);
    assert.equal(r.events.filter((e) => e.event === 'error').length, 0);
  }
});
