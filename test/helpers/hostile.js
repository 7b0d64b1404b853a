// A hostile "sandbox proxy" for security tests: an HTTP server whose answer to each upgrade is
// chosen by the `port` query, so one tunnel handle (one mapping per behaviour) meets every kind of
// misbehaviour, and ports without a behaviour get a well-behaved echo tunnel.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { listen } from './index.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept a client expects for its Sec-WebSocket-Key. */
export function acceptFor(key) {
  return createHash('sha1').update(`${key}${GUID}`).digest('base64');
}

/** One unmasked server frame (FIN set) with `opcode` and `payload`; `claimedLength` may lie. */
export function frame(opcode, payload = Buffer.alloc(0), claimedLength = payload.length) {
  let header;
  if (claimedLength < 126) {
    header = Buffer.from([0x80 | opcode, claimedLength]);
  } else if (claimedLength < 65536) {
    header = Buffer.alloc(4);
    header.writeUInt16BE(claimedLength, 2);
    header[1] = 126;
  } else {
    header = Buffer.alloc(10);
    header.writeBigUInt64BE(BigInt(claimedLength), 2);
    header[1] = 127;
  }
  header[0] = 0x80 | opcode;
  return Buffer.concat([header, payload]);
}

/** A complete 101 answer to `req`, optionally with a wrong accept value. */
export function switching(req, accept = acceptFor(req.headers['sec-websocket-key'])) {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

/** A plain HTTP answer with a JSON (or any) body, then close. */
export function answer(socket, status, body, extraHeaders = '') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'X'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${extraHeaders}connection: close\r\n\r\n${text}`);
}

/**
 * Starts the hostile server. `behaviours` maps a remote port to (req, socket, head, tools) => void,
 * where tools.ws(cb) completes a real upgrade and hands over the ws WebSocket. Other ports echo.
 * Returns { url, port, requests, sockets, close() }.
 */
export async function startHostile(behaviours = {}) {
  const sockets = new Set();
  const requests = [];
  const server = http.createServer((req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const echo = (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  };
  server.on('upgrade', (req, socket, head) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    // HTTP servers allow half-open sockets: without this, a raw behaviour's socket outlives its client.
    socket.on('end', () => socket.destroy());
    requests.push({ url: req.url, headers: req.headers });
    const port = Number(new URL(req.url, 'http://x').searchParams.get('port'));
    let upgraded = false;
    const tools = {
      ws: (cb) => {
        upgraded = true;
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on('error', () => {});
          cb(ws);
        });
      },
    };
    const behaviour = behaviours[port];
    if (behaviour) behaviour(req, socket, head, tools);
    else tools.ws(echo);
    // A raw behaviour ignores what the client sends; reading it is what lets 'end' fire.
    if (!upgraded) socket.resume();
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
