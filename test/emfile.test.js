// Out of file descriptors is reported: under `ulimit -n 64`, libuv drops the connections it cannot
// accept without telling anyone; the CLI notices the full descriptor table and warns (human line and
// a TL_WARN_FD_LIMIT event) instead of dropping connections silently.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { CLI, cliEnv, eventually, startEcho, startServer } from './helpers/index.js';

test('under ulimit -n 64, a burst of 120 clients gets a file-descriptor warning', { skip: !existsSync('/proc/self/limits') && 'needs /proc' }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const child = spawn('bash', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${CLI}" --json --proxy-url ${server.url} sbx-1 :${echo.port}`], {
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const sockets = [];
  try {
    await eventually(() => stdout.includes('"listening"'), { timeoutMs: 15_000, what: 'listening' });
    const port = JSON.parse(stdout.split('\n')[0]).addresses[0].port;
    for (let i = 0; i < 120; i += 1) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.write('x');
      sockets.push(s);
    }
    await eventually(() => stdout.includes('TL_WARN_FD_LIMIT'), { timeoutMs: 15_000, what: `the warning; stderr:\n${stderr}` });
  } finally {
    for (const s of sockets) s.destroy();
    child.kill('SIGINT');
    await new Promise((resolve) => child.on('close', resolve));
    await server.close();
    await echo.close();
  }
  const warning = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.code === 'TL_WARN_FD_LIMIT');
  assert.match(warning.message, /Out of file descriptors \(.*ulimit -n 64\): new local connections are being dropped; raise the limit/);
  assert.match(stderr, /^warning Out of file descriptors/m);
  // One warning for the burst, not one per dropped connection.
  assert.equal((stderr.match(/Out of file descriptors/g) ?? []).length, 1);
});
