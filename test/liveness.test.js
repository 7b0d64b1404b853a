// Liveness is not flow control (issue 10, item 2): a program that stops reading for a while
// (longer than two keepalive intervals) pauses its tunnel without either side declaring the other
// dead; and the reference server's own keepalive drops a client that vanished (item 6).
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import WebSocket from 'ws';
import { CANARY_KEY, startCli, eventually, randomBytes, sha256 } from './helpers/index.js';
import { startServerProcess, startService, killChild, within } from './helpers/faults.js';

const MiB = 1024 * 1024;
const PAUSE_MS = 5000; // five keepalive intervals with --keepalive 1
const DATA = randomBytes(24 * MiB);

/**
 * Runs `fn(cli)` with a forwarder to `target` through a reference server process, keepalive 1 s on
 * both sides; then checks that neither side declared the other dead, and no error was reported.
 */
async function throughSlowTunnel(target, extraArgs, fn) {
  const server = await startServerProcess(0, ['--keepalive', '1']);
  const cli = await startCli(['--no-check', '--keepalive', '1', ...extraArgs, '--proxy-url', server.url, 'sbx-slow', `:${target.port}`]);
  try {
    await fn(cli);
    assert.ok(!cli.events.some((e) => e.event === 'error'), JSON.stringify(cli.events.filter((e) => e.event === 'error')));
  } finally {
    const r = await cli.stop();
    await killChild(server.child);
    await target.close();
    assert.doesNotMatch(r.stderr, /stopped answering/);
  }
}

test('a sandbox program that stops reading for 5 s (keepalive 1 s on both sides) is not declared dead', async () => {
  const digests = [];
  const target = await startService((s) => {
    const chunks = [];
    s.pause();
    setTimeout(() => s.resume(), PAUSE_MS);
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => {
      digests.push(sha256(Buffer.concat(chunks)));
      s.end();
    });
  });
  await throughSlowTunnel(target, ['--linger', '0.2'], async (cli) => {
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.resume();
    socket.end(DATA);
    await eventually(() => digests.length === 1, { timeoutMs: 30_000, what: `the target to read everything; stderr:\n${cli.stderr()}` });
    assert.equal(digests[0], sha256(DATA));
  });
});

test('a local program that stops reading for 5 s (keepalive 1 s on both sides) is not declared dead', async () => {
  const target = await startService((s) => s.end(DATA));
  await throughSlowTunnel(target, [], async (cli) => {
    const socket = net.connect(cli.port, '127.0.0.1');
    const chunks = [];
    socket.on('data', (d) => chunks.push(d));
    socket.pause();
    setTimeout(() => socket.resume(), PAUSE_MS);
    await within(once(socket, 'end'), 30_000, `the download to end; stderr:\n${cli.stderr()}`);
    assert.equal(sha256(Buffer.concat(chunks)), sha256(DATA));
  });
});

test('tl-tunnel-server --keepalive drops a client that vanished, and resets its target socket', async () => {
  const endings = [];
  const target = await startService((s) => {
    endings.push(new Promise((resolve) => {
      s.once('end', () => resolve('fin'));
      s.once('error', (err) => resolve(err.code));
      s.once('close', () => resolve('closed'));
    }));
  });
  const server = await startServerProcess(0, ['--keepalive', '1']);
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/tunnels/tcp?port=${target.port}`, { headers: { authorization: `Bearer ${CANARY_KEY}` } });
  ws.on('error', () => {});
  try {
    await once(ws, 'open');
    await eventually(() => endings.length === 1, { timeoutMs: 5000, what: 'the target connection' });
    // The client vanishes without a word: it reads nothing more, so it answers no ping.
    ws._socket.pause();
    const how = await within(endings[0], 15_000, 'the server to drop the silent tunnel');
    assert.notEqual(how, 'fin', 'a dropped tunnel must reset its target socket');
  } finally {
    ws.terminate();
    await killChild(server.child);
    await target.close();
  }
});
