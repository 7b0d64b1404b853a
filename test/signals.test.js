// SIGHUP (terminal closed) and SIGUSR2 stop like SIGTERM, and so does the IPC message `shutdown`
// (the clean stop a parent has on Windows): tunnels closed, summary, `stopped` event, exit 0.
// (Closing a real terminal is in tty.test.js.)
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { SERVER_CLI, cliEnv, startEcho, startServer, startCli } from './helpers/index.js';
import { isShutdownMessage, stopSignals } from '../dist/cli/signals.js';

const stops = [
  { how: 'SIGHUP', skip: process.platform === 'win32' && 'another process cannot send SIGHUP on Windows' },
  { how: 'SIGUSR2', skip: process.platform === 'win32' && 'Windows has no SIGUSR2' },
  { how: 'shutdown', ipc: true, skip: false },
  { how: { type: 'shutdown' }, ipc: true, skip: false },
];

for (const { how, ipc, skip } of stops) {
  test(`${JSON.stringify(how)} with a tunnel open: it is closed, counted, summarised; exit 0`, { skip }, async () => {
    const echo = await startEcho();
    const server = await startServer();
    const cli = await startCli(['--proxy-url', server.url, 'sbx-sig', `:${echo.port}`], { ipc });
    const socket = net.connect(cli.port, '127.0.0.1');
    socket.on('error', () => {});
    try {
      socket.write('ping');
      await once(socket, 'data');
      // The stop resets the local connection: wait for its close, not for an error-free one.
      const closed = new Promise((resolve) => socket.once('close', resolve));
      // Idle for a second, the tunnel's stop is not an interruption.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const r = await cli.stop(how);
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

test('the reference server stops on the IPC message too, though the parent keeps the channel open', async () => {
  const child = spawn(process.execPath, [SERVER_CLI, '--port', '0', '--json'], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  try {
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    while (!stdout.includes('\n')) await once(child.stdout, 'data');
    assert.match(stdout, /"event":"listening"/);
    child.send('shutdown');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  } finally {
    child.kill('SIGKILL');
  }
});

test('which messages stop, and which signals on each platform', () => {
  assert.ok(isShutdownMessage('shutdown'));
  assert.ok(isShutdownMessage({ type: 'shutdown' }));
  for (const other of ['stop', 'SHUTDOWN', { type: 'ready' }, null, 42, ['shutdown']]) assert.ok(!isShutdownMessage(other), JSON.stringify(other));
  assert.deepEqual(stopSignals('win32'), ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']);
  assert.deepEqual(stopSignals('linux'), ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2']);
  assert.deepEqual(stopSignals('darwin'), stopSignals('linux'));
});
