// Messages a person can act on: quoted input cut short, option errors naming the flag and its unit
// before any output, hints that fit the mistake, host:port in network errors, the spinner saying it
// retries, and no error line for clients that merely leave.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { echoRoundTrip, runCli, startCli, startEcho, startServer } from './helpers/index.js';
import { frame, startHostile, switching } from './helpers/hostile.js';
import { selfSignedCert } from './helpers/tls.js';

const BIG = 'x'.repeat(100_000);

test('a 100 KB argument is quoted once, cut to 60 characters', async () => {
  for (const args of [['sbx-1', BIG], [BIG, '5432'], [`--${BIG}`, 'sbx-1', '5432'], ['--keepalive', BIG, 'sbx-1', '5432']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, r.stderr.slice(0, 300));
    assert.ok(r.stderr.length < 400, `${r.stderr.length} characters: ${r.stderr.slice(0, 300)}`);
  }
});

const OPTION_ERRORS = [
  [['--connect-timeout', '3601'], /^error --connect-timeout 3601 is out of range: give from 0\.001 to 3600 seconds/],
  [['--keepalive', '0.0001'], /^error --keepalive 0\.0001 is out of range: give 0 or from 0\.001 to 3600 seconds \(0 turns it off\)/],
  [['--linger', '99999'], /^error --linger 99999 is out of range: .*seconds/],
  [['--wait=100000'], /^error --wait 100000 is out of range: give from 0\.001 to 86400 seconds/],
  [['--max-connections', '2000000'], /^error --max-connections takes a whole number from 1 to 1000000/],
  [['--proxy-url', 'http://127.0.0.1:0'], /^error Invalid proxy URL: port 0/],
];

for (const [flags, expected] of OPTION_ERRORS) {
  test(`${flags.join(' ')}: exit 2 naming the flag and its unit, before anything else is printed`, async () => {
    const r = await runCli([...flags, 'sbx-1', '5432']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, expected);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /Ms\b|maxConnections|Checking/);
  });
}

const SPEC_HINTS = [
  ['::1:15432:5432', /put the IPv6 address in brackets, as in \[::1\]:15432:5432/],
  // ssh's form with a host other than the sandbox's own loopback (localhost there is accepted).
  ['26406:db.internal:16390', /ends inside the sandbox, on its 127\.0\.0\.1, so the host can only be localhost or 127\.0\.0\.1.*write 26406:16390/],
];

for (const [spec, hint] of SPEC_HINTS) {
  test(`port spec ${spec} gets a hint that fits`, async () => {
    const r = await runCli(['sbx-1', spec]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, hint);
  });
}

test('--address of another machine: the hint is about the address, not :REMOTE', async () => {
  const r = await runCli(['--no-check', '--proxy-url', 'http://127.0.0.1:9', '--address', '192.0.2.55', 'sbx-1', '5432']);
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /this machine has no such address; bind an address of this machine/);
  assert.doesNotMatch(r.stderr, /try :5432/);
});

test('`sbx --wait 5432` keeps 5432 as the port spec; --wait with --no-check says it applies per connection', async () => {
  const echo = await startEcho();
  const server = await startServer();
  // The echo server holds 127.0.0.1:<its port>, which a bare REMOTE spec binds locally too: ::1 only.
  const cli = await startCli(['--no-check', '--address', '::1', '--proxy-url', server.url, 'sbx-1', '--wait', `${echo.port}`]);
  try {
    const listening = cli.events.find((e) => e.event === 'listening');
    assert.equal(listening.remotePort, echo.port);
  } finally {
    const r = await cli.stop();
    await server.close();
    await echo.close();
    assert.match(r.stderr, /--wait with --no-check: each connection waits up to 120 s for the port; startup does not wait/);
  }
});

test('one spelling of the sandbox on every line: as typed (the control plane judges case)', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'SBX-Case', `:${echo.port}`]);
  const r = await cli.stop();
  await server.close();
  await echo.close();
  assert.match(r.stderr, /Checking sandbox SBX-Case…/);
  assert.match(r.stderr, /-> SBX-Case:/);
  assert.doesNotMatch(r.stderr + r.stdout, /sbx-case/);
});

test('http:// to a TLS server: retries are announced, then host:port and a hint to use https://', async () => {
  const cert = selfSignedCert();
  const server = await startServer({ tls: { cert: cert.cert, key: cert.key } });
  try {
    const plain = server.url.replace('https://', 'http://');
    const r = await runCli(['-v', '--connect-timeout', '1', '--proxy-url', plain, 'sbx-1', '5432']);
    assert.equal(r.code, 6, r.stderr);
    const { port } = new URL(plain);
    assert.match(r.stderr, /^Checking sandbox sbx-1: retrying \(attempt 2\) after: /m);
    assert.match(r.stderr, new RegExp(`^error Cannot reach the sandbox proxy at 127\\.0\\.0\\.1:${port} \\(ECONNRESET\\); if that port speaks TLS, use https://`, 'm'));
  } finally {
    await server.close();
    cert.close();
  }
});

test('https:// to a plain server: a hint to use http://', async () => {
  const server = await startServer();
  try {
    const r = await runCli(['--proxy-url', server.url.replace('http://', 'https://'), 'sbx-1', '5432']);
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, /TLS with 127\.0\.0\.1:\d+ failed \(EPROTO\); that port does not seem to speak TLS: for a plain proxy on this machine use http:\/\//);
  } finally {
    await server.close();
  }
});

test('clients that connect and reset at once: no error line even with -q, and the right peer', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['-q', '--proxy-url', server.url, 'sbx-1', `:${echo.port}`]);
  try {
    for (let i = 0; i < 10; i += 1) {
      const s = net.connect(cli.port, '127.0.0.1');
      s.on('error', () => {});
      await once(s, 'connect');
      s.resetAndDestroy();
    }
    // A client that stays is served; those before it were either never tunnels or left quietly.
    const data = Buffer.from('after the resets');
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    await cli.waitFor((ev) => ev.some((e) => e.event === 'close' && e.bytesSent === data.length), 10_000, 'the round trip closed');
  } finally {
    const r = await cli.stop();
    await server.close();
    await echo.close();
    assert.doesNotMatch(r.stderr, /✖|error/, r.stderr);
    // Each ends with its one close: the peer as accepted, or "unknown" for a client the system had
    // already forgotten when it was accepted; never "?:0".
    const closes = r.events.filter((ev) => ev.event === 'close');
    assert.equal(closes.length, 11);
    for (const e of closes) assert.match(e.peer, /^(127\.0\.0\.1:[1-9]\d*|unknown)$/);
    assert.ok(closes.every((e) => e.code === undefined));
    assert.deepEqual(r.events.find((e) => e.event === 'stopped').errors, {});
  }
});

test('a ping flood cut by ws is a protocol error, not a dropped connection', async () => {
  const flood = Buffer.concat(Array.from({ length: 20_000 }, () => frame(9, Buffer.from('p'))));
  const hostile = await startHostile({ 9: (req, s) => s.write(Buffer.concat([Buffer.from(switching(req)), flood])) });
  const cli = await startCli(['--no-check', '--proxy-url', hostile.url, 'sbx-1', ':9']);
  try {
    const s = net.connect(cli.port, '127.0.0.1');
    s.on('error', () => {});
    s.write('hi');
    await cli.waitFor((ev) => ev.some((e) => e.event === 'close'), 10_000, 'close');
  } finally {
    const r = await cli.stop();
    await hostile.close();
    const error = r.events.find((e) => e.event === 'error');
    assert.equal(error.code, 'TL_ERR_PROTOCOL');
    assert.match(r.stderr, /flooded the tunnel with pings/);
  }
});
