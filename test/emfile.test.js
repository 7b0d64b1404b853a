// Out of file descriptors is reported: under a small `ulimit -n`, libuv drops the connections it cannot
// accept without telling anyone; the CLI notices the full descriptor table and warns (human line and
// a TL_WARN_FD_LIMIT event) instead of dropping connections silently.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CANARY_KEY, CLI, cliEnv, eventually, startEcho, startServer } from './helpers/index.js';

test('under ulimit -n 128, a burst of 250 clients gets a file-descriptor warning', { skip: !existsSync('/proc/self/limits') && 'needs /proc' }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const child = spawn('bash', ['-c', `ulimit -n 128 && exec "${process.execPath}" "${CLI}" --json --proxy-url ${server.url} sbx-1 :${echo.port}`], {
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
    for (let i = 0; i < 250; i += 1) {
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
  assert.match(warning.message, /Out of file descriptors \(.*ulimit -n 128\): new local connections are being dropped; raise the limit/);
  assert.match(stderr, /^warning Out of file descriptors/m);
  // One warning for the burst, not one per dropped connection.
  assert.equal((stderr.match(/Out of file descriptors/g) ?? []).length, 1);
});

// In a child process: a tunnel whose next upgrade cannot get a descriptor (the accept took the last
// one) reports TL_ERR_FD_LIMIT on that connection and warns, instead of "cannot reach the proxy".
const CHILD = `
import fs from 'node:fs';
const [dist, apiKey, proxyUrl, target] = process.argv.slice(2);
const { openTunnel } = await import(dist);
// No warm connections: the upgrade after the fill must need a descriptor of its own.
const handle = await openTunnel({ sandbox: 'sbx-1', ports: ':' + target, credentials: { apiKey }, proxyUrl, check: false, prewarm: false });
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
handle.on('close', (e) => say({ close: e.error?.code ?? null, message: e.error?.message }));
handle.on('warning', (w) => say({ warning: w.code, message: w.message }));
say({ port: handle.addresses.find((a) => a.family === 'IPv4').port });
process.stdin.on('data', () => {
  const held = [];
  try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch {}
  fs.closeSync(held.pop());
  say({ filled: held.length });
});
`;

test('an upgrade that finds no descriptor left is TL_ERR_FD_LIMIT, with the warning', { skip: !existsSync('/proc/self/limits') && 'needs /proc' }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-emfile-'));
  const script = path.join(dir, 'child.mjs');
  writeFileSync(script, CHILD);
  // A small limit, so that using every descriptor up is quick.
  const args = [script, new URL('../dist/index.js', import.meta.url).href, CANARY_KEY, server.url, String(echo.port)];
  const child = spawn('bash', ['-c', 'ulimit -n 256 && exec "$@"', 'bash', process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = [];
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, nl)));
      buffer = buffer.slice(nl + 1);
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  try {
    await eventually(() => lines.some((l) => l.port), { timeoutMs: 10_000, what: 'the port' });
    const port = lines.find((l) => l.port).port;
    // A first connection loads everything the upgrades need.
    const warm = net.connect(port, '127.0.0.1');
    warm.on('error', () => {});
    warm.end('x');
    await eventually(() => lines.some((l) => 'close' in l), { timeoutMs: 10_000, what: `the warm-up close; ${stderr}` });
    child.stdin.write('fill\n');
    await eventually(() => lines.some((l) => l.filled), { timeoutMs: 10_000, what: 'descriptors filled' });
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write('x');
    await eventually(() => lines.some((l) => l.close === 'TL_ERR_FD_LIMIT'), { timeoutMs: 10_000, what: `TL_ERR_FD_LIMIT; got ${JSON.stringify(lines)} ${stderr}` });
    await eventually(() => lines.some((l) => l.warning === 'TL_WARN_FD_LIMIT'), { timeoutMs: 10_000, what: 'the warning' });
    s.destroy();
  } finally {
    child.kill('SIGKILL');
    await server.close();
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(lines.find((l) => l.close === 'TL_ERR_FD_LIMIT').message, /out of file descriptors \(EMFILE\): could not open a tunnel to 127\.0\.0\.1:\d+; raise the limit/);
});
