// Proxy-mode test helpers: a raw SOCKS5 / HTTP CONNECT client (to read the exact reply codes), and
// a "sandbox proxy" front that answers chosen sandboxes with a status (404, 401) or never at all,
// and passes every other upgrade through to a reference server untouched.
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { listen, sandboxOf } from './index.js';

/** Reads from `socket` until `n` bytes came (or it closed); leaves the rest in the socket. */
function readExactly(socket, n) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) {
        done();
        socket.pause();
        if (buf.length > n) socket.unshift(buf.subarray(n));
      }
    };
    const done = () => {
      socket.off('data', onData);
      socket.off('close', done);
      resolve(buf.subarray(0, n));
    };
    socket.on('data', onData);
    socket.on('close', done);
    socket.resume();
  });
}

/**
 * SOCKS5 CONNECT to host:port through the proxy at 127.0.0.1:proxyPort. Resolves to { code, socket }:
 * code is the reply's REP byte (0 = success, then the socket is the tunnel), or undefined if closed.
 */
export async function socks5Connect(proxyPort, host, port) {
  const socket = net.connect(proxyPort, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const name = Buffer.from(host);
  socket.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]));
  const method = await readExactly(socket, 2);
  if (method.length < 2 || method[1] !== 0) return { code: undefined, socket };
  const reply = await readExactly(socket, 10);
  return { code: reply.length === 10 ? reply[1] : undefined, socket };
}

/** Sends raw bytes to the proxy and returns everything it answers until it closes. */
export async function rawExchange(proxyPort, bytes, { end = false } = {}) {
  const socket = net.connect(proxyPort, '127.0.0.1');
  const chunks = [];
  socket.on('data', (d) => chunks.push(d));
  socket.on('error', () => {});
  await once(socket, 'connect');
  if (end) socket.end(bytes);
  else socket.write(bytes);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

/**
 * An upgrade front for `server` (a reference tunnel server): sandbox ids in `statuses` get that HTTP
 * status with a JSON body, ids in `silent` get no answer at all; every other upgrade is piped to the
 * reference server as it came. Emits the sandbox id of every upgrade in `seen`.
 */
export async function startSandboxFront(server, { statuses = {}, silent = [] } = {}) {
  const seen = [];
  const held = new Set();
  const front = http.createServer((req, res) => res.writeHead(404).end());
  front.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    const id = sandboxOf(req.headers);
    seen.push(id);
    if (silent.includes(id)) {
      held.add(socket);
      return;
    }
    const status = statuses[id];
    if (status) {
      const body = JSON.stringify({ error: `sandbox front says ${status} for ${id}`, code: `FRONT_${status}` });
      socket.end(`HTTP/1.1 ${status} Status\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    const upstream = net.connect(server.port, '127.0.0.1');
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    upstream.write(head);
    socket.pipe(upstream).pipe(socket);
  });
  const port = await listen(front);
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => {
      for (const s of held) s.destroy();
      front.closeAllConnections();
      return new Promise((r) => front.close(() => r()));
    },
  };
}
