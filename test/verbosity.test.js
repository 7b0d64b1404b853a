// Default, -v and -q output on stderr, and the summarising of bursts of identical errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { startEcho, startServer, startCli, echoRoundTrip, freePort, eventually, cliEnv, CLI, CANARY_KEY } from './helpers/index.js';
import { droppedConnection } from './helpers/connections.js';

/** Opens `n` connections at once and waits until the CLI has dropped them all. */
function failedConnections(port, n) {
  return Promise.all(Array.from({ length: n }, () => droppedConnection(port)));
}

const lines = (text) => text.split('\n').filter((l) => l !== '');

test('default output: startup lines, warnings and errors, no per-connection lines; stdout stays empty without --json', async () => {
  const echo = await startEcho();
  const dead = await freePort();
  const server = await startServer();
  const child = spawn(process.execPath, [CLI, '--proxy-url', server.url, 'sbx-v', `:${echo.port}`, `:${dead}`], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  const exited = once(child, 'close');
  try {
    await eventually(() => stderr.includes('Press Ctrl-C'), { timeoutMs: 15_000, what: 'startup lines' });
    const ports = [...stderr.matchAll(/Forwarding 127\.0\.0\.1:(\d+) -> sbx-v:(\d+)/g)].map((m) => ({ local: Number(m[1]), remote: Number(m[2]) }));
    assert.equal(ports.length, 2, stderr);
    assert.match(stderr, /Checking sandbox sbx-v/);
    assert.match(stderr, new RegExp(`warning Nothing is listening on port ${dead}`));
    const data = Buffer.from('ping');
    assert.deepEqual(await echoRoundTrip(ports[0].local, data), data);
    await failedConnections(ports[1].local, 1);
    await eventually(() => stderr.includes('✖'), { what: 'the error line' });
  } finally {
    child.kill('SIGINT');
    const [code] = await exited;
    await server.close();
    await echo.close();
    assert.equal(code, 0, stderr);
  }
  assert.equal(stdout, '');
  assert.ok(!stderr.includes(CANARY_KEY));
  assert.doesNotMatch(stderr, /#\d+ .* open/, 'no per-connection lines by default');
  assert.doesNotMatch(stderr, /Credentials from/);
  assert.match(stderr, new RegExp(`✖ 127\\.0\\.0\\.1:\\d+ -> sbx-v:${dead}: Nothing is listening on port ${dead}`));
  assert.match(stderr, /Stopped: 1 connection served, 1 failed/);
});

test('-v: one line per open and close with bytes and duration, the credential source and the URL, never the key', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['-v', '--proxy-url', server.url, 'sbx-v', `:${echo.port}`]);
  try {
    const data = Buffer.alloc(3000, 7);
    assert.equal((await echoRoundTrip(cli.port, data)).length, data.length);
    await cli.waitFor((ev) => ev.some((e) => e.event === 'close'), 10_000, 'close');
  } finally {
    const r = await cli.stop();
    await server.close();
    await echo.close();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^Credentials from TENSORLAKE_API_KEY$/m);
    // Settings that play no part are not listed as if they did: --proxy-url means no lookup.
    assert.match(r.stderr, /^API URL \S+ \(from default; not used: --proxy-url skips the lookup\)$/m);
    assert.match(r.stderr, new RegExp(`^Proxy ${server.url.replace(/[.]/g, '\\.')} \\(from --proxy-url: no lookup\\)$`, 'm'));
    assert.match(r.stderr, new RegExp(`^Tunnel URL ws://127\\.0\\.0\\.1:${server.port}/api/v1/tunnels/tcp\\?port=${echo.port}$`, 'm'));
    assert.match(r.stderr, new RegExp(`#1 127\\.0\\.0\\.1:\\d+ -> sbx-v:${echo.port} open`));
    assert.match(r.stderr, /#1 127\.0\.0\.1:\d+ -> sbx-v:\d+ closed: 2\.9 KiB sent, 2\.9 KiB received in \d+(\.\d)? (ms|s) \(/);
  }
});

test('-q: errors only, and the Forwarding lines once (the port picked for :REMOTE)', async () => {
  const echo = await startEcho();
  const dead = await freePort();
  const server = await startServer();
  const cli = await startCli(['-q', '--proxy-url', server.url, 'sbx-q', `:${echo.port}`, `:${dead}`], { mappings: 2 });
  try {
    const data = Buffer.from('quiet please');
    assert.deepEqual(await echoRoundTrip(cli.ports[0], data), data);
    await failedConnections(cli.ports[1], 1);
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close').length >= 2, 10_000, 'two closes');
  } finally {
    const r = await cli.stop();
    await server.close();
    await echo.close();
    assert.equal(r.code, 0, r.stderr);
    const out = lines(r.stderr);
    const forwarding = out.filter((l) => l.startsWith('Forwarding '));
    for (const port of cli.ports) assert.ok(forwarding.includes(`Forwarding 127.0.0.1:${port} -> sbx-q:${port === cli.ports[0] ? echo.port : dead}`), r.stderr);
    const rest = out.filter((l) => !l.startsWith('Forwarding '));
    assert.equal(rest.length, 1, r.stderr);
    assert.match(rest[0], new RegExp(`^✖ 127\\.0\\.0\\.1:\\d+ -> sbx-q:${dead}: Nothing is listening`));
  }
});

test('a burst of identical errors is summarised, when the 5 s window ends and at exit', async () => {
  const dead = await freePort();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-burst', `:${dead}`]);
  const errorLines = () => lines(cli.stderr()).filter((l) => l.startsWith('✖'));
  try {
    await failedConnections(cli.port, 30);
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close').length >= 30, 15_000, '30 closes');
    // The window closes on its own after 5 s and prints the count.
    await eventually(() => errorLines().some((l) => l.includes('×')), { timeoutMs: 15_000, what: 'the burst summary' });
    const first = errorLines();
    assert.ok(first.length < 30, cli.stderr());
    const full = first.filter((l) => !l.includes('×')).length;
    const counted = first.map((l) => /×(\d+) more in the last \d s$/.exec(l)).filter(Boolean).reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(full + counted, 30, cli.stderr());
    assert.match(first.find((l) => l.includes('×')), new RegExp(`^✖ sbx-burst:${dead}: port closed \\(502\\) ×\\d+ more in the last \\d s$`));

    // A second burst still open at Ctrl-C is summarised on the way out.
    await failedConnections(cli.port, 10);
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close').length >= 40, 15_000, '40 closes');
  } finally {
    const r = await cli.stop();
    await server.close();
    assert.equal(r.code, 0, r.stderr);
    const all = lines(r.stderr).filter((l) => l.startsWith('✖'));
    assert.ok(all.length < 40, r.stderr);
    const full = all.filter((l) => !l.includes('×')).length;
    const counted = all.map((l) => /×(\d+) more/.exec(l)).filter(Boolean).reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(full + counted, 40, r.stderr);
    // The summary comes before the exit line.
    const stderrLines = lines(r.stderr);
    assert.ok(stderrLines.findLastIndex((l) => l.startsWith('✖') && l.includes('×')) < stderrLines.findIndex((l) => l.startsWith('Stopped:')), r.stderr);
    assert.match(r.stderr, /Stopped: 0 connections served, 40 failed; 0 B sent, 0 B received; errors: port closed ×40/);
    // JSON keeps every error: scripts count them themselves.
    assert.equal(r.events.filter((e) => e.event === 'error').length, 40);
  }
});
