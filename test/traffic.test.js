// handle.traffic() counts bytes while tunnels are open (the status line's rates depend on it);
// handle.stats adds a tunnel's bytes only when it closes.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { openTunnel } from '../dist/index.js';
import { CANARY_KEY, eventually, startEcho, startServer } from './helpers/index.js';

test('traffic() includes open tunnels; stats catches up when they close', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const tunnel = await openTunnel({ sandbox: 'sbx-traffic', ports: [`:${echo.port}`], proxyUrl: server.url, credentials: { apiKey: CANARY_KEY } });
  const socket = net.connect(tunnel.addresses[0].port, '127.0.0.1');
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    let received = 0;
    socket.on('data', (d) => (received += d.length));
    socket.write(Buffer.alloc(5000, 1));
    await eventually(() => received === 5000, { what: 'the echo' });
    await eventually(() => tunnel.traffic().bytesReceived === 5000, { what: 'traffic() to count the open tunnel' });
    assert.deepEqual(tunnel.traffic(), { bytesSent: 5000, bytesReceived: 5000 });
    assert.equal(tunnel.stats.bytesSent, 0);
    socket.end();
    await eventually(() => tunnel.stats.active === 0, { what: 'the tunnel to close' });
    assert.equal(tunnel.stats.bytesSent, 5000);
    assert.deepEqual(tunnel.traffic(), { bytesSent: 5000, bytesReceived: 5000 });
  } finally {
    socket.destroy();
    await tunnel.close();
    await server.close();
    await echo.close();
  }
});
