// The WAN bench's services behind the tunnel (the "ports inside the sandbox") besides the echo of
// ../lib/target.js, and the measurements made against them from the driver.
import net from 'node:net';
import { once } from 'node:events';
import { connectTo } from '../lib/driver.js';

const BANNER = Buffer.from('220 bench ready\r\n');
const BODY = 'hello, world\n';
const RESPONSE = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`);
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');

async function serve(onConnection) {
  const sockets = new Set();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: server.address().port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Speaks first (an SMTP/SSH/PostgreSQL-style banner), then echoes. */
export const startBanner = () =>
  serve((socket) => {
    socket.write(BANNER);
    socket.pipe(socket);
  });

/** A minimal HTTP/1.1 server: one short response per connection, then it closes (Connection: close). */
export const startHttp = () =>
  serve((socket) => {
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk;
      if (text.includes('\r\n\r\n')) socket.end(RESPONSE);
    });
  });

/** ms from connect() to the first byte of a banner. */
export async function bannerTime(port) {
  const t0 = performance.now();
  const socket = await connectTo(port);
  await once(socket, 'data');
  const ms = performance.now() - t0;
  socket.destroy();
  return ms;
}

/** One request on a new connection: ms from connect() to the whole response, and to EOF. */
export async function httpTimes(port) {
  const t0 = performance.now();
  const socket = await connectTo(port);
  let got = 0;
  let responseMs;
  const ended = new Promise((resolve, reject) => {
    socket.on('data', (chunk) => {
      got += chunk.length;
      if (got >= RESPONSE.length && responseMs === undefined) responseMs = performance.now() - t0;
    });
    socket.once('end', resolve);
    socket.once('close', () => reject(new Error('HTTP connection closed without EOF')));
  });
  socket.write(REQUEST);
  await ended;
  const eofMs = performance.now() - t0;
  socket.destroy();
  if (responseMs === undefined) throw new Error(`short HTTP response (${got} bytes)`);
  return { responseMs, eofMs };
}
