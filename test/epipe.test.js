// Nobody reading our output is no reason to drop the tunnels: when the reader of stderr or stdout
// goes away (EPIPE), forwarding goes on silently and SIGTERM still stops cleanly.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startEcho, startServer, echoRoundTrip, freePort, eventually, cliEnv, CLI, CANARY_KEY } from './helpers/index.js';

/** A few round trips on `port` and a failing connection on `deadPort`: each writes -v or error lines. */
async function traffic(port, deadPort) {
  for (let i = 0; i < 5; i += 1) {
    const data = Buffer.alloc(2000 + i, i);
    assert.deepEqual(await echoRoundTrip(port, data), data);
  }
  if (deadPort) await echoRoundTrip(deadPort, Buffer.from('x')).catch(() => {});
}

function exited(child) {
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
}

test('the reader of stderr exits: forwarding goes on, SIGTERM still stops with the summary event', async () => {
  const echo = await startEcho();
  const dead = await freePort();
  const server = await startServer();
  const child = spawn(process.execPath, [CLI, '-v', '--json', '--proxy-url', server.url, 'sbx-pipe', `:${echo.port}`, `:${dead}`], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const done = exited(child);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  const events = () => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  try {
    await eventually(() => events().filter((e) => e.event === 'listening').length === 2, { timeoutMs: 15_000, what: 'listening' });
    const [port, deadPort] = events().filter((e) => e.event === 'listening').map((e) => e.addresses[0].port);
    // The reader goes away: the next -v line meets EPIPE.
    child.stderr.destroy();
    await traffic(port, deadPort);
    await traffic(port, deadPort);
    await eventually(() => events().filter((e) => e.event === 'close').length === 12, { timeoutMs: 10_000, what: 'twelve closes' });
    child.kill('SIGTERM');
    const { code, signal } = await done;
    assert.equal(code, 0, `exit ${code} ${signal}\n${stdout}`);
    const stopped = events().at(-1);
    assert.equal(stopped.event, 'stopped');
    assert.equal(stopped.connections, 12);
    assert.deepEqual(stopped.errors, { TL_ERR_PORT_CLOSED: 2 });
    assert.ok(!stdout.includes(CANARY_KEY));
  } finally {
    child.kill('SIGKILL');
    await server.close();
    await echo.close();
  }
});

test('`2>&1 | head -1`: after head exits, forwarding goes on and SIGTERM exits 0', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const port = await freePort();
  // The shell's `tl-tunnel ... 2>&1 | head -1`, with the process ids at hand.
  const head = spawn('head', ['-1'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let first = '';
  head.stdout.setEncoding('utf8').on('data', (d) => (first += d));
  const headDone = exited(head);
  const child = spawn(process.execPath, [CLI, '-v', '--proxy-url', server.url, 'sbx-pipe', `${port}:${echo.port}`], { env: cliEnv(), stdio: ['ignore', head.stdin, head.stdin] });
  head.stdin.destroy();
  const done = exited(child);
  try {
    await headDone;
    assert.notEqual(first, '');
    await eventually(async () => (await echoRoundTrip(port, Buffer.from('ready')).catch(() => Buffer.alloc(0))).toString() === 'ready', { timeoutMs: 15_000, what: 'the forward' });
    await traffic(port);
    await traffic(port);
    assert.equal(child.exitCode, null, 'still running');
    child.kill('SIGTERM');
    assert.deepEqual(await done, { code: 0, signal: null });
  } finally {
    child.kill('SIGKILL');
    await server.close();
    await echo.close();
  }
});

test('the reader of stdout (--json) exits: forwarding goes on, the summary still reaches stderr', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, '--json', '--proxy-url', server.url, 'sbx-pipe', `${port}:${echo.port}`], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const done = exited(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  try {
    await once(child.stdout, 'data');
    child.stdout.destroy();
    await traffic(port);
    await traffic(port);
    child.kill('SIGTERM');
    const { code } = await done;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^Stopped: 10 connections served; /m);
  } finally {
    child.kill('SIGKILL');
    await server.close();
    await echo.close();
  }
});
