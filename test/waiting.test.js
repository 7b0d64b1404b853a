// --max-connections: clients that give up while they wait free their place (FIN or RST), a
// waiting client that sent data and half-closed is still served in full, and connections refused
// because too many wait are counted in the exit summary and the `stopped` event.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startCli, startEcho, startServer } from './helpers/index.js';

/** Connects and resolves once connected; the socket collects what it receives. */
async function client(port) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.received = [];
  socket.on('data', (d) => socket.received.push(d));
  await once(socket, 'connect');
  return socket;
}

const settle = (ms) => new Promise((r) => setTimeout(r, ms));

async function withBusyTunnel(fn) {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--max-connections', '1', '--proxy-url', server.url, 'sbx-1', `:${echo.port}`]);
  try {
    const busy = await client(cli.port);
    busy.write('busy');
    await cli.waitFor((ev) => ev.some((e) => e.event === 'open'), 10_000, 'the busy tunnel');
    await fn(cli, busy);
  } finally {
    const r = await cli.stop();
    await server.close();
    await echo.close();
    return r;
  }
}

test('four waiting clients that leave (two FIN, two RST) do not fill the waiting line', async () => {
  let live;
  const r = await withBusyTunnel(async (cli, busy) => {
    for (const how of ['end', 'reset', 'end', 'reset']) {
      const s = await client(cli.port);
      // Leave once the CLI has surely taken it into the waiting line (a reset before that is
      // another case: see messages.test.js).
      await settle(50);
      if (how === 'end') s.end();
      else s.resetAndDestroy();
    }
    // Each leaver ends with its one close event, once the CLI noticed it left.
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close' && e.reason.startsWith('local client left')).length >= 4, 10_000, 'four leavers noticed');
    live = await client(cli.port);
    live.write('still served');
    await settle(300);
    assert.ok(!cli.events.some((e) => e.code === 'TL_WARN_OVERLOADED'), `a live client was refused:\n${cli.stderr()}`);
    busy.destroy();
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'open').length >= 2, 10_000, 'the live client admitted');
    await new Promise((resolve) => {
      const check = () => (Buffer.concat(live.received).toString() === 'still served' ? resolve() : setTimeout(check, 20));
      check();
    });
    live.destroy();
  });
  assert.equal(r.code, 0, r.stderr);
  // The leavers were never tunnels: only the busy one and the live one opened.
  assert.equal(r.events.filter((e) => e.event === 'open').length, 2);
});

test('a waiting client that sent data and half-closed is served in full', async () => {
  const r = await withBusyTunnel(async (cli, busy) => {
    const waiting = await client(cli.port);
    const payload = Buffer.alloc(200_000, 7);
    waiting.end(payload);
    await settle(300);
    busy.destroy();
    await once(waiting, 'close');
    assert.equal(Buffer.concat(waiting.received).length, payload.length);
  });
  assert.equal(r.code, 0, r.stderr);
});

test('connections refused because too many wait appear in the summary and the stopped event', async () => {
  const r = await withBusyTunnel(async (cli) => {
    const waiting = [];
    for (let i = 0; i < 4; i += 1) waiting.push(await client(cli.port));
    await settle(100);
    const extra = await client(cli.port);
    await cli.waitFor((ev) => ev.some((e) => e.code === 'TL_WARN_OVERLOADED'), 10_000, 'the refusal');
    extra.destroy();
    for (const s of waiting) s.destroy();
  });
  assert.equal(r.code, 0, r.stderr);
  const stopped = r.events.find((e) => e.event === 'stopped');
  assert.equal(stopped.refused, 1);
  assert.match(r.stderr, /^Stopped: .*1 refused \(too many waiting\)/m);
});

test('a flood of refused connections gets one line and a count, not a line each (every refusal is still an event)', async () => {
  const r = await withBusyTunnel(async (cli) => {
    const waiting = [];
    for (let i = 0; i < 4; i += 1) waiting.push(await client(cli.port));
    await settle(100);
    const extra = [];
    for (let i = 0; i < 5; i += 1) extra.push(await client(cli.port));
    await cli.waitFor((ev) => ev.filter((e) => e.code === 'TL_WARN_OVERLOADED').length === 5, 10_000, 'five refusals');
    for (const s of [...extra, ...waiting]) s.destroy();
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.match(/^warning Refused a connection/gm)?.length, 1, r.stderr);
  assert.match(r.stderr, /^warning refused connections \(too many waiting\) ×4 more in the last \d+ s$/m);
  assert.equal(r.events.find((e) => e.event === 'stopped').refused, 5);
});
