// EOF without delay (issue 9): when the peer's close frame follows its data, the local client gets
// its EOF at once, not a round trip later when the WebSocket's TCP connection has closed. The relay
// hooks ws's Receiver for this (src/relay/close-frame.ts); if a ws upgrade breaks that hook, the
// relay falls back to ws's 'close' event and this test fails.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { listen, startCli } from './helpers/index.js';
import { frame, switching } from './helpers/hostile.js';

/**
 * A tunnel server that answers every upgrade with `payload`, then a close frame (1000), and keeps
 * its TCP connection open, whatever the client sends, until `release()`.
 */
async function startLateCloser(payload) {
  const sockets = new Set();
  let release;
  const released = new Promise((resolve) => (release = resolve));
  const server = http.createServer();
  server.on('upgrade', (req, socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume();
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    socket.write(Buffer.concat([Buffer.from(switching(req)), frame(2, payload), frame(8, Buffer.concat([code, Buffer.from('done')]))]));
    released.then(() => socket.end());
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    release,
    released,
    close: () => {
      release();
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

test('EOF reaches the local client when the close frame arrives, before the TCP close of the tunnel', async () => {
  const payload = Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello');
  const server = await startLateCloser(payload);
  const cli = await startCli(['--no-check', '--proxy-url', server.url, 'sbx-eof', ':8080']);
  let releasedFirst = false;
  server.released.then(() => (releasedFirst = true));
  // The server lets go of its TCP connection after 3 s at the latest, so a late EOF fails the
  // assertion below instead of hanging the test.
  const fallback = setTimeout(server.release, 3000);
  try {
    const socket = net.connect(cli.port, '127.0.0.1');
    const chunks = [];
    socket.on('data', (d) => chunks.push(d));
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(socket, 'end');
    const eofBeforeTcpClose = !releasedFirst;
    server.release();
    assert.ok(eofBeforeTcpClose, 'EOF arrived only after the server closed the TCP connection (is the ws close-frame hook gone?)');
    assert.equal(Buffer.concat(chunks).toString(), payload.toString());
    const close = await cli.waitFor((ev) => ev.find((e) => e.event === 'close'), 10_000, 'close event');
    assert.equal(close.code, undefined, JSON.stringify(close));
    socket.destroy();
  } finally {
    clearTimeout(fallback);
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    await server.close();
  }
});
