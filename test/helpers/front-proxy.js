// A TCP proxy in front of a tunnel server that counts what the client side does: connections
// accepted, bytes each one sent. It can also play a sandbox proxy with an idle limit (ends a
// connection on which nothing went either way for `idleCloseMs`), or one whose close races the
// client's upgrade (resets a connection the moment the client sends after `resetIfIdleMs` of silence;
// with `idleReply`, answers that instead, e.g. a 408, and closes).
import net from 'node:net';
import { once } from 'node:events';

export async function startFrontProxy(upstreamPort, { idleCloseMs, resetIfIdleMs, idleReply } = {}) {
  const conns = [];
  const server = net.createServer((client) => {
    const conn = { accepted: Date.now(), lastByte: Date.now(), bytesIn: 0, closed: false, reset: false, socket: client };
    conns.push(conn);
    client.on('error', () => {});
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    const idleTimer = idleCloseMs === undefined ? undefined : setTimeout(() => {
      client.end();
      upstream.end();
    }, idleCloseMs);
    client.on('data', (chunk) => {
      if (resetIfIdleMs !== undefined && Date.now() - conn.lastByte >= resetIfIdleMs) {
        conn.reset = true;
        if (idleReply) client.end(idleReply);
        else client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      idleTimer?.refresh();
      conn.lastByte = Date.now();
      conn.bytesIn += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      idleTimer?.refresh();
      client.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', () => {
      conn.closed = true;
      clearTimeout(idleTimer);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: server.address().port,
    conns,
    open: () => conns.filter((c) => !c.closed),
    close() {
      for (const c of conns) c.socket.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
