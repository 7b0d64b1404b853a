// SIGHUP (terminal closed) and SIGUSR2 stop like SIGTERM: tunnels closed, summary, `stopped`
// event, exit 0. (Closing a real terminal is in tty.test.js.)
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startEcho, startServer, startCli } from './helpers/index.js';

for (const signal of ['SIGHUP', 'SIGUSR2']) {
  test(`${signal} with a tunnel open: it is closed, counted, summarised; exit 0`, { skip: process.platform === 'win32' }, async () => {
    const echo = await startEcho();
    const server = await startServer();
    const cli = await startCli(['--proxy-url', server.url, 'sbx-sig', `:${echo.port}`]);
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    try {
      socket.write('ping');
      await once(socket, 'data');
      // The stop resets the local connection: wait for its close, not for an error-free one.
      const closed = new Promise((resolve) => socket.once('close', resolve));
      // Idle for a second, the tunnel's stop is not an interruption.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const r = await cli.stop(signal);
      await closed;
      assert.equal(r.code, 0, `${r.signal} ${r.stderr}`);
      assert.match(r.stderr, /^Stopped: 1 connection served; 4 B sent, 4 B received; /m);
      const stopped = r.events.at(-1);
      assert.equal(stopped.event, 'stopped');
      assert.equal(stopped.connections, 1);
      assert.ok(r.events.some((e) => e.event === 'close' && e.id === 1));
    } finally {
      socket.destroy();
      await server.close();
      await echo.close();
    }
  });
}
