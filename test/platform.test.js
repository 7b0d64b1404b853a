// What differs per platform, decided by pure functions with the platform and environment injected, so
// every branch runs here: Unicode or ASCII symbols, the macOS check of wildcard binds, the EACCES
// explanation, the shell syntax of hints. Needs no POSIX tool: the Windows lane runs it with node.exe.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { glyphsFor, isUnicodeSupported } from '../dist/cli/glyphs.js';
import { columnsOf } from '../dist/cli/live-line.js';
import { StatusLine } from '../dist/cli/status-line.js';
import { tryHint } from '../dist/cli/server/hints.js';
import { busyFromProbe, wildcardConflict, wildcardToProbe } from '../dist/client/bind-checks.js';
import { accessDeniedReason, killCommand, setEnvCommand } from '../dist/index.js';
import { apiKeyExample } from '../dist/config/shell-syntax.js';

test('Unicode: everywhere but the Linux console; on Windows only in terminals known to show it, or on CI', () => {
  assert.equal(isUnicodeSupported({}, 'linux'), true);
  assert.equal(isUnicodeSupported({ TERM: 'xterm-256color' }, 'darwin'), true);
  assert.equal(isUnicodeSupported({ TERM: 'linux' }, 'linux'), false);
  assert.equal(isUnicodeSupported({}, 'win32'), false, 'the classic console host');
  assert.equal(isUnicodeSupported({ TERM: 'dumb' }, 'win32'), false);
  assert.equal(isUnicodeSupported({ ConEmuTask: '{cmd::other}' }, 'win32'), false);
  const yes = [
    { WT_SESSION: 'a1b2' },
    { TERMINUS_SUBLIME: '1' },
    { ConEmuTask: '{cmd::Cmder}' },
    { TERM_PROGRAM: 'Terminus-Sublime' },
    { TERM_PROGRAM: 'vscode' },
    { TERM: 'xterm-256color' },
    { TERM: 'alacritty' },
    { TERM: 'rxvt-unicode' },
    { TERM: 'rxvt-unicode-256color' },
    { TERMINAL_EMULATOR: 'JetBrains-JediTerm' },
    { CI: 'true' },
  ];
  for (const env of yes) assert.equal(isUnicodeSupported(env, 'win32'), true, JSON.stringify(env));
});

test('ASCII symbols are ASCII, one character per spinner frame; Unicode text loses its ellipsis only in ASCII', () => {
  const ascii = glyphsFor(false);
  const { text, ...symbols } = ascii;
  assert.ok(!/[^\x20-\x7e]/.test(JSON.stringify(symbols)), JSON.stringify(symbols));
  assert.ok(ascii.spinner.every((f) => f.length === 1));
  assert.equal(text('Looking up sandbox sbx-1…'), 'Looking up sandbox sbx-1...');
  assert.equal(glyphsFor(true).text('Looking up sandbox sbx-1…'), 'Looking up sandbox sbx-1…');
  const source = { stats: { active: 1, lingering: 0, waiting: 0, connections: 3, errors: {} }, traffic: () => ({ bytesSent: 2048, bytesReceived: 0 }) };
  const line = new StatusLine({ show() {}, hide() {} }, source, (l) => l, ascii);
  const shown = line.text(Date.now());
  line.stop();
  assert.match(shown, /^1 open \| 3 served \| up 2\.0 KiB .* \| down 0 B /);
});

test('the width is asked of the terminal on each redraw, not taken from the last resize event', () => {
  let columns = 80;
  const stream = { columns: 80, _handle: { getWindowSize: (size) => ((size[0] = columns), (size[1] = 24), 0) } };
  assert.equal(columnsOf(stream), 80);
  columns = 42; // resized, and no SIGWINCH seen (a Windows console not being read)
  assert.equal(columnsOf(stream), 42);
  assert.equal(columnsOf({ columns: 100 }), 100, 'no handle: the last known width');
  assert.equal(columnsOf({ columns: 100, _handle: { getWindowSize: () => -9 } }), 100, 'the handle failed');
  assert.equal(columnsOf({}), 0);
});

test('macOS: the wildcard of the same family is tried before a loopback bind; elsewhere nothing is', () => {
  assert.equal(wildcardToProbe('darwin', '127.0.0.1', 8080), '0.0.0.0');
  assert.equal(wildcardToProbe('darwin', '::1', 8080), '::');
  assert.equal(wildcardToProbe('darwin', '127.0.0.1', 0), undefined, 'a port the kernel picks is free on every address');
  assert.equal(wildcardToProbe('darwin', '0.0.0.0', 8080), undefined);
  assert.equal(wildcardToProbe('darwin', '192.168.1.5', 8080), undefined);
  for (const platform of ['linux', 'win32', 'freebsd']) assert.equal(wildcardToProbe(platform, '127.0.0.1', 8080), undefined, platform);

  const busy = busyFromProbe('127.0.0.1', 8080, '0.0.0.0', 'EADDRINUSE');
  assert.equal(busy.code, 'EADDRINUSE');
  assert.match(busy.message, /0\.0\.0\.0:8080 is taken/);
  assert.match(busyFromProbe('::1', 8080, '::', 'EADDRINUSE').message, /\[::\]:8080/);
  // No IPv6, a privileged port: for the real bind to report, in its own words.
  for (const code of [undefined, 'EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EACCES']) assert.equal(busyFromProbe('127.0.0.1', 80, '0.0.0.0', code), undefined, String(code));
});

test('macOS check, with real binds: a taken 0.0.0.0:P refuses 127.0.0.1:P as in use', async () => {
  const blocker = net.createServer();
  blocker.listen({ port: 0, host: '0.0.0.0', exclusive: true });
  await once(blocker, 'listening');
  after(() => blocker.close());
  const { port } = blocker.address();
  const conflict = await wildcardConflict('127.0.0.1', port, 'darwin');
  assert.equal(conflict?.code, 'EADDRINUSE');
  assert.equal(await wildcardConflict('127.0.0.1', port, 'linux'), undefined, 'Linux refuses the bind itself');
  // A free wildcard is let go again at once: the loopback bind that follows gets the port.
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const freePort = probe.address().port;
  await new Promise((r) => probe.close(r));
  assert.equal(await wildcardConflict('127.0.0.1', freePort, 'darwin'), undefined);
  const loopback = net.createServer().listen({ port: freePort, host: '127.0.0.1', exclusive: true });
  await once(loopback, 'listening');
  await new Promise((r) => loopback.close(r));
});

test('EACCES: a reserved port range on Windows, privileges elsewhere', () => {
  assert.match(accessDeniedReason('win32'), /netsh int ipv4 show excludedportrange protocol=tcp/);
  assert.doesNotMatch(accessDeniedReason('win32'), /privilege/);
  assert.match(accessDeniedReason('linux'), /ports below 1024 need privileges/);
  assert.equal(accessDeniedReason('darwin'), accessDeniedReason('linux'));
});

test('commands in messages: PowerShell on Windows, a POSIX shell elsewhere', () => {
  assert.equal(setEnvCommand('TENSORLAKE_API_KEY', "it's", 'win32'), "$env:TENSORLAKE_API_KEY='it''s'");
  assert.equal(setEnvCommand('TENSORLAKE_API_KEY', 'tl_apiKey_...', 'linux'), 'export TENSORLAKE_API_KEY=tl_apiKey_...');
  assert.equal(apiKeyExample('win32'), "(e.g. $env:TENSORLAKE_API_KEY='tl_apiKey_...')");
  assert.equal(killCommand(42, 'win32'), 'taskkill /F /PID 42');
  assert.equal(killCommand(42, 'darwin'), 'kill 42');

  const server = { host: '127.0.0.1', port: 9443, url: 'http://127.0.0.1:9443', token: 'tok123' };
  assert.equal(tryHint(server, 'generated', false, 'linux'), 'Try: TENSORLAKE_API_KEY=tok123 tl-tunnel --proxy-url http://127.0.0.1:9443 local <port>');
  assert.equal(tryHint(server, 'generated', false, 'win32'), "Try (PowerShell): $env:TENSORLAKE_API_KEY='tok123'; tl-tunnel --proxy-url http://127.0.0.1:9443 local <port>");
  assert.equal(tryHint(server, 'env', false, 'linux'), 'Try: TENSORLAKE_API_KEY="$TL_TUNNEL_SERVER_TOKEN" tl-tunnel --proxy-url http://127.0.0.1:9443 local <port>');
  assert.equal(tryHint(server, 'env', false, 'win32'), 'Try (PowerShell): $env:TENSORLAKE_API_KEY=$env:TL_TUNNEL_SERVER_TOKEN; tl-tunnel --proxy-url http://127.0.0.1:9443 local <port>');
  assert.equal(
    tryHint({ ...server, host: '0.0.0.0' }, 'flag', true, 'win32'),
    "Try (PowerShell): $env:TENSORLAKE_API_KEY='<your --token>'; $env:TENSORLAKE_SANDBOX_API_URL='http://127.0.0.1:9443'; tl-tunnel <sandbox> <port>",
  );
  assert.equal(tryHint(server, 'flag', true, 'linux'), 'Try: TENSORLAKE_API_KEY=<your --token> TENSORLAKE_SANDBOX_API_URL=http://127.0.0.1:9443 tl-tunnel <sandbox> <port>');
});
