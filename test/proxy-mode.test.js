// Proxy mode (-D) end to end: real curl (SOCKS5, SOCKS4a, HTTP absolute-form, CONNECT) and raw
// SOCKS clients through the built CLI, a reference server, and a front that plays missing,
// unauthorised and silent sandboxes. Routing is proven by the sandbox id each upgrade carries.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { openProxy } from '../dist/index.js';
import { CANARY_KEY, freePort, listen, runCli, startCli, startEcho, startServer } from './helpers/index.js';
import { needsTools, requireBinary } from './helpers/services.js';
import { selfSignedCert } from './helpers/tls.js';
import { rawExchange, socks5Connect, startSandboxFront } from './helpers/socks.js';

const toolSkip = needsTools('curl');
const curlBin = toolSkip ? 'curl' : requireBinary('curl', 'curl');

function curl(args, env = {}) {
  return new Promise((resolve) => {
    execFile(curlBin, ['-sS', '--max-time', '15', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

let server;
let front;
let web;
let webPort;
let echo;
let cli;
let proxy;
let closedPort;

before(async () => {
  server = await startServer();
  front = await startSandboxFront(server, { statuses: { gone: 404, badkey: 401 }, silent: ['slow'] });
  web = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, connection: req.headers.connection ?? null, proxyConnection: req.headers['proxy-connection'] ?? null, body })));
  });
  webPort = await listen(web);
  echo = await startEcho();
  closedPort = await freePort();
  cli = await startCli(['--proxy-url', front.url, '--connect-timeout', '1', '-D', '0', 'cli-sbx']);
  proxy = `127.0.0.1:${cli.port}`;
});

after(async () => {
  const r = await cli?.stop();
  await front?.close();
  await server?.close();
  web?.close();
  await echo?.close();
  if (r) assert.equal(r.code, 0, r.stderr);
});

const lastSandbox = () => front.seen.at(-1);

test('listening event: kind proxy, loopback addresses, the command-line sandbox', () => {
  const e = cli.events.find((ev) => ev.event === 'listening');
  assert.equal(e.kind, 'proxy');
  assert.equal(e.sandbox, 'cli-sbx');
  assert.ok(e.addresses.every((a) => a.address === '127.0.0.1' || a.address === '::1'), JSON.stringify(e.addresses));
});

test('curl --socks5-hostname: <sandbox>, <sandbox>.sandbox, <sandbox>.localhost and localhost each reach their sandbox', { skip: toolSkip }, async () => {
  for (const [host, sandbox] of [['my-app', 'my-app'], ['Other-App.sandbox', 'other-app'], ['third.localhost', 'third'], ['localhost', 'cli-sbx']]) {
    const r = await curl(['--socks5-hostname', proxy, `http://${host}:${webPort}/p?q=1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).url, '/p?q=1');
    assert.equal(lastSandbox(), sandbox, host);
  }
  // SOCKS5 with an IPv4 address (curl resolves localhost itself) and SOCKS4a.
  const v4 = await curl(['--socks5', proxy, `http://127.0.0.1:${webPort}/v4`]);
  assert.equal(JSON.parse(v4.stdout).url, '/v4');
  assert.equal(lastSandbox(), 'cli-sbx');
  const s4 = await curl(['--socks4a', proxy, `http://db-box:${webPort}/s4a`]);
  assert.equal(JSON.parse(s4.stdout).url, '/s4a');
  assert.equal(lastSandbox(), 'db-box');
});

test('curl -x: absolute-form forwarded as origin-form with the right Host; two targets on one curl connection', { skip: toolSkip }, async () => {
  const r = await curl(['-x', `http://${proxy}`, '-H', 'Proxy-Connection: keep-alive', `http://my-app:${webPort}/a/b?c=d`, `http://second:${webPort}/two`, '-d', 'payload']);
  assert.equal(r.code, 0, r.stderr);
  const [first, second] = r.stdout.split('}{').map((s, i) => JSON.parse(i === 0 ? `${s}}` : `{${s}`));
  assert.deepEqual(first, { method: 'POST', url: '/a/b?c=d', host: `my-app:${webPort}`, connection: 'close', proxyConnection: null, body: 'payload' });
  assert.deepEqual(second, { method: 'POST', url: '/two', host: `second:${webPort}`, connection: 'close', proxyConnection: null, body: 'payload' });
  assert.deepEqual(front.seen.slice(-2), ['my-app', 'second']);
});

test('curl -p -x: CONNECT tunnels any port', { skip: toolSkip }, async () => {
  const r = await curl(['-p', '-x', `http://${proxy}`, `http://conn-box:${webPort}/c`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).url, '/c');
  assert.equal(lastSandbox(), 'conn-box');
  // HTTPS_PROXY: TLS end to end through CONNECT, to a TLS server inside the sandbox.
  const cert = selfSignedCert();
  const tls = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => res.end(`tls ${req.headers.host}`));
  try {
    const tlsPort = await listen(tls);
    const r2 = await curl(['-k', `https://secure-box:${tlsPort}/`], { HTTPS_PROXY: `http://${proxy}` });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stdout, `tls secure-box:${tlsPort}`);
    assert.equal(lastSandbox(), 'secure-box');
  } finally {
    tls.close();
    cert.close();
  }
});

test('refused destinations: SOCKS reply 0x02, HTTP 403 naming the host, one stderr line per host', { skip: toolSkip }, async () => {
  const before = front.seen.length;
  const h = await curl(['-x', `http://${proxy}`, '-w', '%{http_code}', 'http://example.com/']);
  assert.match(h.stdout, /refused example\.com:80: "example\.com" is not a sandbox/);
  assert.match(h.stdout, /403$/);
  await curl(['-x', `http://${proxy}`, 'http://example.com/again']);
  const s = await socks5Connect(cli.port, 'www.example.org', 443);
  assert.equal(s.code, 0x02);
  s.socket.destroy();
  const ip = await socks5Connect(cli.port, '10.1.2.3', 80);
  assert.equal(ip.code, 0x02);
  ip.socket.destroy();
  const evil = await socks5Connect(cli.port, 'evil\x1b[2J\nbox', 80);
  assert.equal(evil.code, 0x02);
  evil.socket.destroy();
  assert.equal(front.seen.length, before, 'nothing refused reached the sandbox proxy');
  await cli.waitFor((ev) => ev.some((e) => e.event === 'warning' && e.message.includes('"evil\\u001b[2J\\nbox" port 80')), 5000, 'quoted control characters');
  assert.ok(!cli.stderr().includes('\x1b'), 'no escape sequence reaches the terminal');
  await cli.waitFor((ev) => ev.some((e) => e.event === 'warning' && /www\.example\.org/.test(e.message)), 5000, 'refusal warning');
  const lines = cli.stderr().split('\n').filter((l) => /Refused example\.com:80/.test(l));
  assert.equal(lines.length, 1, cli.stderr());
});

test('error mapping: no such sandbox 0x04/404, nothing listening 0x05/502, auth 0x02/502, timeout 0x06/504', { skip: toolSkip }, async () => {
  const cases = [
    ['gone', webPort, 0x04, 404, /No sandbox "gone" was found/],
    ['my-app', closedPort, 0x05, 502, /Nothing is listening on port/],
    ['badkey', webPort, 0x02, 502, /rejected the credentials \(401[;)]/],
    ['slow', webPort, 0x06, 504, /did not open the tunnel in time/],
  ];
  for (const [sandbox, port, socksCode, status, reason] of cases) {
    const s = await socks5Connect(cli.port, sandbox, port);
    assert.equal(s.code, socksCode, sandbox);
    s.socket.destroy();
    const h = await curl(['-x', `http://${proxy}`, '-w', '\n%{http_code}', `http://${sandbox}:${port}/`]);
    const [body, code] = h.stdout.split('\n').filter(Boolean);
    assert.equal(Number(code), status, sandbox);
    assert.match(body, reason, sandbox);
    const c = await curl(['-p', '-x', `http://${proxy}`, '-w', '%{http_connect}', `http://${sandbox}:${port}/`]);
    assert.equal(c.stdout, String(status), `CONNECT ${sandbox}`);
  }
  // Each failure is a close event with its code, naming the sandbox, and a deduplicated stderr line.
  await cli.waitFor((ev) => ev.some((e) => e.event === 'close' && e.sandbox === 'slow' && e.code === 'TL_ERR_TIMEOUT'), 5000, 'timeout close');
  for (const [sandbox, code] of [['gone', 'TL_ERR_SANDBOX_NOT_FOUND'], ['my-app', 'TL_ERR_PORT_CLOSED'], ['badkey', 'TL_ERR_AUTH']]) {
    assert.ok(cli.events.some((e) => e.event === 'close' && e.sandbox === sandbox && e.code === code), `${sandbox} ${code}`);
  }
  assert.match(cli.stderr(), /-> badkey:\d+: The sandbox proxy rejected the credentials/);
});

test('malformed input gets a protocol error and a close, and the proxy keeps serving', { skip: toolSkip }, async () => {
  assert.equal((await rawExchange(cli.port, Buffer.from([0xff, 0, 1]))).length, 0);
  assert.deepEqual([...(await rawExchange(cli.port, Buffer.from([5, 1, 2])))], [5, 0xff]);
  assert.deepEqual([...(await rawExchange(cli.port, Buffer.from([5, 1, 0, 5, 3, 0, 1, 1, 2, 3, 4, 0, 80])))], [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
  assert.match((await rawExchange(cli.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toString(), /^HTTP\/1\.1 400 [\s\S]*This is a proxy/);
  assert.match((await rawExchange(cli.port, Buffer.from(`GET http://a:1/ HTTP/1.1\r\nX: ${'y'.repeat(40_000)}\r\n\r\n`))).toString(), /^HTTP\/1\.1 431 /);
  assert.match((await rawExchange(cli.port, Buffer.from('PUT http://a:1/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'))).toString(), /^HTTP\/1\.1 400 /);
  const ok = await curl(['--socks5-hostname', proxy, `http://still-up:${webPort}/`]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('200 concurrent proxied connections, checksum-verified both ways', { timeout: 60_000 }, async () => {
  // Its own forwarder with the default --connect-timeout: the shared one's 1 s (for the silent
  // sandbox) is too short for 200 handshakes at once on a loaded machine.
  const own = await startCli(['--proxy-url', front.url, '-D', '0', 'cli-sbx']);
  const N = 200;
  const results = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const data = randomBytes(16 * 1024 + i);
      const { code, socket } = await socks5Connect(own.port, `box-${i % 7}`, echo.port);
      assert.equal(code, 0);
      const chunks = [];
      let got = 0;
      await new Promise((resolve, reject) => {
        socket.on('data', (d) => {
          chunks.push(d);
          got += d.length;
          if (got >= data.length) resolve();
        });
        socket.on('close', () => resolve());
        socket.on('error', reject);
        socket.resume();
        socket.write(data);
      });
      socket.destroy();
      const sum = (b) => createHash('sha256').update(b).digest('hex');
      return sum(Buffer.concat(chunks)) === sum(data);
    }),
  );
  assert.equal(results.filter(Boolean).length, N);
  const r = await own.stop();
  assert.equal(r.code, 0, r.stderr);
});

test('-D on a non-loopback address warns loudly; -D with port specs runs both; Ctrl-C prints one summary', async () => {
  const both = await startCli(['--proxy-url', server.url, '-D', '0.0.0.0:0', 'mixed', `:${echo.port}`], { mappings: 2 });
  try {
    assert.match(both.stderr(), /warning The proxy listens on 0\.0\.0\.0:\d+, beyond this machine: anyone who can reach it/);
    const proxyPort = both.events.find((e) => e.event === 'listening' && e.kind === 'proxy').addresses[0].port;
    const viaProxy = await socks5Connect(proxyPort, 'localhost', echo.port);
    assert.equal(viaProxy.code, 0);
    viaProxy.socket.destroy();
    // Idle for a second, the tunnel's stop is not an interruption.
    await new Promise((resolve) => setTimeout(resolve, 1200));
  } finally {
    const r = await both.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Stopped: 1 connection served/);
  }
});

test('usage: bad -D values, --stdio with -D, and a sandbox-less run without -D', async () => {
  for (const [args, re] of [[['-D', '70000'], /-D, --proxy-port takes \[ADDRESS:\]PORT/], [['-D', 'nope:1'], /Invalid|address/i], [['-D', '1080', '--stdio', 'a', '22'], /either --stdio or -D/], [[], /Missing required argument 'sandbox'/]]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('library: openProxy routes by host, reports events with sandbox and port, and cuts slow handshakes', { skip: toolSkip }, async () => {
  const p = await openProxy({ port: 0, credentials: { apiKey: CANARY_KEY }, proxyUrl: server.url, handshakeTimeoutMs: 300 });
  try {
    const opened = [];
    p.on('open', (info) => opened.push(`${info.sandbox}:${info.remotePort}`));
    const s = await socks5Connect(p.addresses[0].port, 'lib-box', echo.port);
    assert.equal(s.code, 0);
    s.socket.destroy();
    assert.deepEqual(opened, [`lib-box:${echo.port}`]);
    // Without a command-line sandbox, localhost is refused.
    const l = await socks5Connect(p.addresses[0].port, 'localhost', echo.port);
    assert.equal(l.code, 0x02);
    l.socket.destroy();
    // Slowloris: half a request line, then silence; the proxy closes it.
    const slow = await rawExchange(p.addresses[0].port, Buffer.from('GET http://lib-box'));
    assert.match(slow.toString(), /^HTTP\/1\.1 408 /);
    const slowSocks = await rawExchange(p.addresses[0].port, Buffer.from([5, 1, 0, 5, 1]));
    assert.deepEqual([...slowSocks], [5, 0], 'only the method choice, then the close');
    assert.ok(p.warnings.length === 0 && p.stats.connections === 1, JSON.stringify(p.stats));
  } finally {
    await p.close();
    await p.close();
  }
  await assert.rejects(openProxy({ port: 70000, credentials: { apiKey: CANARY_KEY } }), /Invalid option port/);
  // The sandbox proxy itself unreachable: SOCKS 0x03, HTTP 502.
  const dead = await openProxy({ port: 0, credentials: { apiKey: CANARY_KEY }, proxyUrl: `http://127.0.0.1:${closedPort}`, connectTimeoutMs: 500 });
  try {
    const s = await socks5Connect(dead.addresses[0].port, 'any-box', 80);
    assert.equal(s.code, 0x03);
    s.socket.destroy();
    const h = await curl(['-x', `http://127.0.0.1:${dead.addresses[0].port}`, '-w', '\n%{http_code}', 'http://any-box/']);
    assert.match(h.stdout, /Cannot reach the sandbox proxy[\s\S]*\n502$/);
  } finally {
    await dead.close();
  }
});
