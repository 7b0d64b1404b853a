// --wait: keep retrying 502 while the service in the sandbox starts; give up with exit 4.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startServer, startCli, runCli, echoRoundTrip, freePort, eventually, cliEnv, CLI, CANARY_KEY } from './helpers/index.js';

/** A TCP echo service on a chosen port (the service that starts late). */
async function echoOn(port) {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

test('--wait 20: a service started after the tunnel is waited for, then forwarded', async () => {
  const port = await freePort();
  const server = await startServer();
  let refused = 0;
  server.on('reject', (r) => {
    if (r.status === 502) refused += 1;
  });
  let echo;
  let cli;
  let startedFirst = false;
  const starting = startCli(['--wait', '20', '--proxy-url', server.url, 'sbx-wait', `:${port}`], { timeoutMs: 30_000 }).then((c) => {
    startedFirst = echo === undefined;
    return c;
  });
  try {
    // The startup check keeps being refused (502) while nothing listens.
    await eventually(() => refused >= 2, { timeoutMs: 15_000, what: 'two refused startup checks' });
    // The service comes up a couple of seconds later, as in a fresh sandbox.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    echo = await echoOn(port);
    cli = await starting;
    assert.equal(startedFirst, false, 'listening only after the service started');
    const data = Buffer.from('late but here');
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
  } finally {
    const r = cli ? await cli.stop() : undefined;
    await server.close();
    if (echo) await new Promise((resolve) => echo.close(resolve));
    if (r) {
      assert.equal(r.code, 0, r.stderr);
      // Not a terminal: the plain line, no spinner frames or cursor codes.
      assert.match(r.stderr, new RegExp(`^Waiting for port ${port} in sandbox sbx-wait…$`, 'm'));
      assert.doesNotMatch(r.stderr, /[\u2800-\u28ff]|\x1b\[/);
      assert.doesNotMatch(r.stderr, /^(error|warning)/m);
    }
  }
});

test('--wait 2 with nothing listening: exit 4 and a line saying how long it waited', async () => {
  const port = await freePort();
  const server = await startServer();
  try {
    const r = await runCli(['--wait', '2', '--proxy-url', server.url, 'sbx-wait', `${port}`], { timeoutMs: 20_000 });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`^error Nothing is listening on port ${port} inside sandbox sbx-wait .*; gave up after \\d+(\\.\\d)? s \\(--wait 2\\)$`, 'm'));
    assert.doesNotMatch(r.stderr, /Forwarding/);
  } finally {
    await server.close();
  }
});

test('a bare --wait does not swallow the sandbox argument; Ctrl-C while waiting exits 130 at once', async () => {
  const port = await freePort();
  const server = await startServer();
  const child = spawn(process.execPath, [CLI, '--proxy-url', server.url, '--wait', 'sbx-wait', `${port}`], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = once(child, 'close');
  try {
    await eventually(() => stderr.includes('Waiting for port'), { timeoutMs: 15_000, what: 'the waiting line' });
    child.kill('SIGINT');
    const [code, signal] = await exited;
    assert.equal(code, 130, `${signal} ${stderr}`);
    assert.match(stderr, new RegExp(`Waiting for port ${port} in sandbox sbx-wait`));
    assert.match(stderr, /Interrupted before the tunnel opened/);
    assert.ok(!stderr.includes(CANARY_KEY));
  } finally {
    child.kill('SIGKILL');
    await server.close();
  }
});

// util-linux `script` gives the CLI a terminal; elsewhere this is skipped.
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

function inTerminal(columns, args) {
  const quote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = `stty cols ${columns} rows 30; ${[process.execPath, CLI, ...args].map(quote).join(' ')}`;
  return new Promise((resolve) => {
    const child = spawn(SCRIPT, ['-qfec', command, '/dev/null'], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      // A runaway spinner (the bug this guards against) would write forever.
      if (out.length > 1_000_000) child.kill('SIGKILL');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('on a terminal the wait shows a spinner; a terminal without a width gets the plain line', { skip: process.platform !== 'linux' }, async () => {
  assert.ok(SCRIPT, 'script(1) not found: install the Debian package bsdutils');
  const port = await freePort();
  const server = await startServer();
  try {
    const tty = await inTerminal(100, ['--wait', '1', '--proxy-url', server.url, 'sbx-tty', `${port}`]);
    assert.equal(tty.code, 4, tty.out);
    assert.match(tty.out, /[\u2800-\u28ff]\S* Waiting for port \d+ in sandbox sbx-tty…/u);
    assert.ok(!tty.out.includes(CANARY_KEY));

    const narrow = await inTerminal(0, ['--wait', '1', '--proxy-url', server.url, 'sbx-tty', `${port}`]);
    assert.equal(narrow.code, 4, narrow.out.slice(0, 2000));
    assert.ok(narrow.out.length < 10_000, `${narrow.out.length} bytes of output`);
    assert.match(narrow.out, /Waiting for port \d+ in sandbox sbx-tty…/);
    assert.doesNotMatch(narrow.out, /[\u2800-\u28ff]/u);
  } finally {
    await server.close();
  }
});
