// A cut-off stream never looks complete (issue 10, item 1): a tunnel that ends while data is in
// flight resets the local socket and the target socket (never a clean FIN) and counts as an error
// in the exit summary and the JSON events.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, startCli, eventually, randomBytes } from './helpers/index.js';
import { startService, startFlow, within } from './helpers/faults.js';
import { rawReader } from './helpers/raw-reader.js';

const MiB = 1024 * 1024;
const CHUNK = randomBytes(64 * 1024);

/** How a socket ended: 'fin' (a clean end), or the error code (ECONNRESET for a reset). */
function ending(socket) {
  return new Promise((resolve) => {
    socket.once('end', () => resolve('fin'));
    socket.once('error', (err) => resolve(err.code ?? err.message));
    socket.once('close', () => resolve('closed'));
  });
}

/** A target that streams data forever (with backpressure) and records how each connection ended. */
function endlessSource() {
  const endings = [];
  return startService((s) => {
    endings.push(ending(s));
    const pump = () => {
      while (s.writable && s.write(CHUNK));
    };
    s.on('drain', pump);
    s.resume();
    pump();
  }).then((service) => ({ ...service, endings }));
}

const cut = (how) => how === 'ECONNRESET' || how === 'EPIPE';

test('the reference server stopped mid-download: the local client sees a reset, and the summary counts it', async () => {
  const source = await endlessSource();
  const server = await startServer();
  const cli = await startCli(['--no-check', '--proxy-url', server.url, 'sbx-cut', `:${source.port}`]);
  try {
    const reader = rawReader(cli.port);
    await within(reader.connected, 10_000, 'the local reader connected');
    await cli.waitFor((ev) => ev.some((e) => e.event === 'open'), 10_000, 'open');
    await new Promise((r) => setTimeout(r, 300));
    await server.close();
    const local = await within(reader.ended, 10_000, 'the local reader ended');
    assert.equal(local.how, 'rst', `a cut download must not end with a clean FIN (${local.bytes} bytes read)`);
    const target = await within(source.endings[0], 10_000, 'the target socket ended');
    assert.ok(cut(target), `the target must see a cut, not ${target}`);
    const error = await cli.waitFor((ev) => ev.find((e) => e.event === 'error'), 5000, 'error event');
    assert.equal(error.code, 'TL_ERR_REMOTE_CLOSED');
    assert.match(error.message, /1001/);
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    const stopped = r.events.find((e) => e.event === 'stopped');
    assert.deepEqual(stopped.errors, { TL_ERR_REMOTE_CLOSED: 1 });
    assert.match(r.stderr, /1 failed; .*errors: remote closed ×1/);
  } finally {
    await cli.stop('SIGKILL');
    await server.close();
    await source.close();
  }
});

test('Ctrl-C mid-transfer: the local client and the target see a cut, and it counts as interrupted', async () => {
  const source = await endlessSource();
  const server = await startServer();
  const closes = [];
  server.on('close', (e) => closes.push(e));
  const cli = await startCli(['--no-check', '--proxy-url', server.url, 'sbx-stop', `:${source.port}`]);
  try {
    const reader = rawReader(cli.port);
    await within(reader.connected, 10_000, 'the local reader connected');
    await eventually(() => source.endings.length === 1, { timeoutMs: 10_000, what: 'the download tunnel' });
    // An upload at the same time, through a second tunnel.
    const flow = startFlow(cli.port);
    await eventually(() => flow.received > MiB && source.endings.length === 2, { timeoutMs: 15_000, what: 'transfers under way' });
    await new Promise((r) => setTimeout(r, 200));
    const r = await within(cli.stop('SIGINT'), 10_000, 'the CLI exited');
    assert.equal(r.code, 0, r.stderr);
    const local = await within(reader.ended, 10_000, 'the local reader ended');
    assert.equal(local.how, 'rst', `an interrupted download must not end with a clean FIN (${local.bytes} bytes read)`);
    // The download's target (its receive queue empty, so Node reports a reset as one); the upload's
    // target may see a reset as an end (see helpers/raw-reader.js), so only its closing is checked.
    const target = await within(source.endings[0], 10_000, 'the target socket ended');
    assert.ok(cut(target), `the target must see a cut, not ${target}`);
    await within(source.endings[1], 10_000, 'the upload target socket ended');
    const codes = r.events.filter((e) => e.event === 'close').map((e) => e.code);
    assert.deepEqual(codes, ['TL_ERR_INTERRUPTED', 'TL_ERR_INTERRUPTED']);
    assert.deepEqual(r.events.find((e) => e.event === 'stopped').errors, { TL_ERR_INTERRUPTED: 2 });
    assert.match(r.stderr, /errors: interrupted ×2/);
    await eventually(() => closes.length === 2, { timeoutMs: 5000, what: 'the server closed its tunnels' });
    for (const c of closes) {
      assert.equal(c.closeCode, 1001);
      assert.equal(c.error?.code, 'TL_ERR_REMOTE_CLOSED');
    }
  } finally {
    await cli.stop('SIGKILL');
    await server.close();
    await source.close();
  }
});

test('a normal end after end of input is still a clean FIN both ways', async () => {
  const endings = [];
  const target = await startService((s) => {
    endings.push(ending(s));
    s.pipe(s);
  });
  const server = await startServer();
  const cli = await startCli(['--no-check', '--linger', '0.3', '--proxy-url', server.url, 'sbx-end', `:${target.port}`]);
  try {
    const data = randomBytes(300_000);
    const socket = net.connect(cli.port, '127.0.0.1');
    const chunks = [];
    socket.on('data', (d) => chunks.push(d));
    const ended = ending(socket);
    socket.end(data);
    assert.equal(await within(ended, 10_000, 'the local socket ended'), 'fin');
    assert.ok(Buffer.concat(chunks).equals(data));
    assert.equal(await within(endings[0], 10_000, 'the target socket ended'), 'fin');
    const close = await cli.waitFor((ev) => ev.find((e) => e.event === 'close'), 5000, 'close event');
    assert.equal(close.code, undefined, JSON.stringify(close));
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.events.find((e) => e.event === 'stopped').errors, {});
  } finally {
    await cli.stop('SIGKILL');
    await server.close();
    await target.close();
  }
});
