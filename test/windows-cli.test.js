// The CLI end to end with the Windows build of Node under Wine: version, help, usage errors and
// their exit codes, a checksummed forward through 127.0.0.1 and ::1 with --json, the IPC `shutdown`
// stop (summary, `stopped`, exit 0), --stdio over pipes, config files in the Windows home, the
// reference server run by node.exe, and the test files that need no POSIX tool run by node.exe as
// the test runner. Services (echo, reference server) run on this Linux machine's loopback unless
// said otherwise. Skipped unless TL_WINDOWS_NODE names node.exe (.ci/run sets it).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CANARY_KEY, CLI, ROOT, SERVER_CLI, echoRoundTrip, jsonEvents, randomBytes, sha256, startCli, startEcho, startServer, stopCleanly } from './helpers/index.js';
import { windowsPath, winCli, winDriver, wineHome, winNode, wineSkip as skip } from './helpers/wine.js';

const echo = skip ? undefined : await startEcho();
const server = skip ? undefined : await startServer();
after(async () => {
  await server?.close();
  await echo?.close();
});

/** The CLI forwarding :<echo port> of sandbox sbx-win through the reference server. */
const forwardArgs = (...flags) => [CLI, ...flags, '--proxy-url', server.url, 'sbx-win', `:${echo.port}`];

test('version, help, completion and usage errors, with their exit codes', { skip, timeout: 120_000 }, async () => {
  const [version, help, completion, unknown, badPort, noKey] = await Promise.all([
    winCli(['--version']),
    winCli(['--help']),
    winCli(['completion', 'powershell']),
    winCli(['--bogus']),
    winCli(['sbx-1', 'notaport']),
    winCli(['sbx-1', '5432'], { TENSORLAKE_API_KEY: '' }),
  ]);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\r?\n$/);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: tl-tunnel \[options\] <sandbox> <port-spec\.\.\.>/);
  assert.equal(completion.code, 0, completion.stderr);
  assert.match(completion.stdout, /^Register-ArgumentCompleter -Native -CommandName tl-tunnel,tl-tunnel-server /m);
  for (const r of [unknown, badPort, noKey]) {
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error \S/);
  }
  assert.match(unknown.stderr, /Unknown option '--bogus'/);
  assert.match(badPort.stderr, /Invalid remote port "notaport"/);
  // The example is PowerShell's, not a POSIX shell's `export`.
  assert.match(noKey.stderr, /\(e\.g\. \$env:TENSORLAKE_API_KEY='tl_apiKey_\.\.\.'\)/);
});

test('a forward through 127.0.0.1 and ::1 with --json, stopped by the IPC message: summary, stopped event, exit 0', { skip, timeout: 120_000 }, async () => {
  const run = winDriver({ args: forwardArgs('--json'), ready: true, hosts: ['127.0.0.1', '::1'], stop: 'shutdown' });
  const listening = await run.ready;
  assert.deepEqual(listening.addresses.map((a) => a.address).sort(), ['127.0.0.1', '::1']);
  const r = await run.result;
  assert.deepEqual(r.roundTrips, [{ host: '127.0.0.1', ok: true }, { host: '::1', ok: true }]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^Stopped: 2 connections served; 512 KiB sent, 512 KiB received; no errors\r?$/m);
  const events = jsonEvents(r.stdout);
  assert.deepEqual(events.map((e) => e.event).filter((e) => e !== 'open' && e !== 'close'), ['listening', 'stopped']);
  assert.equal(events.at(-1).connections, 2);
});

test('--stdio relays stdin and stdout pipes over one tunnel, byte for byte', { skip, timeout: 120_000 }, async () => {
  const r = await winDriver({ args: [CLI, '--stdio', '--proxy-url', server.url, 'sbx-win', String(echo.port)], input: 300_000 }).result;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.input.bytes, 300_000);
  assert.equal(r.input.received, r.input.sent);
});

test('the global config in %USERPROFILE%\\.config\\tensorlake supplies the key', { skip, timeout: 120_000 }, async () => {
  const home = wineHome();
  const dir = path.join(home.unix, '.config', 'tensorlake');
  mkdirSync(dir, { recursive: true });
  after(() => rmSync(path.join(home.unix, '.config'), { recursive: true, force: true }));
  writeFileSync(path.join(dir, '.tensorlake_config'), `[tensorlake]\napikey = "${CANARY_KEY}"\n`);
  const run = winDriver({ args: forwardArgs('--json', '-v'), unset: ['TENSORLAKE_API_KEY'], ready: true, hosts: ['127.0.0.1'], stop: { type: 'shutdown' } });
  await run.ready;
  const r = await run.result;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.includes(`Credentials from ${home.windows}\\.config\\tensorlake\\.tensorlake_config`), r.stderr);
  // The reference server accepts only the key in the file.
  assert.deepEqual(r.roundTrips, [{ host: '127.0.0.1', ok: true }]);
});

test('the reference server run by node.exe serves a Linux client; stopped by the IPC message, exit 0', { skip, timeout: 120_000 }, async () => {
  const run = winDriver({ args: [SERVER_CLI, '--port', '0', '--json'], driverEnv: { TL_TUNNEL_SERVER_TOKEN: CANARY_KEY }, ready: true, release: true, stop: 'shutdown' });
  try {
    const listening = await run.ready;
    const cli = await startCli(['--proxy-url', `http://127.0.0.1:${listening.port}`, 'sbx-win', `:${echo.port}`]);
    const data = randomBytes(256 * 1024);
    assert.equal(sha256(await echoRoundTrip(cli.port, data)), sha256(data));
    await stopCleanly(cli);
  } finally {
    run.release();
  }
  const r = await run.result;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^Try \(PowerShell\): \$env:TENSORLAKE_API_KEY=\$env:TL_TUNNEL_SERVER_TOKEN; tl-tunnel --proxy-url http:\/\/127\.0\.0\.1:\d+ local <port>\r?$/m);
});

// Test files that need no POSIX tool, no terminal and no services of this machine.
const PORTABLE = ['parse.test.js', 'proxy-parsers.test.js', 'platform.test.js'];

test(`node.exe as the test runner: ${PORTABLE.join(', ')}`, { skip, timeout: 180_000 }, async () => {
  const r = await winNode(['--test', ...PORTABLE.map((f) => windowsPath(path.join(ROOT, 'test', f)))]);
  assert.equal(r.code, 0, `${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /^# fail 0\r?$/m);
  assert.match(r.stdout, /^# pass [1-9]\d*\r?$/m);
});
