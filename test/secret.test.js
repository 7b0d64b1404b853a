// The API key must never leave the process except in the Authorization header: not in stdout,
// stderr, a --json event, a --verbose line or a thrown error, whatever path the failure takes.
// runCli/startCli (helpers) fail the test when the canary key shows up in a child's output.
import test from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import net from 'node:net';
import { openTunnel, createTunnelServer, redact, registerSecret } from '../dist/index.js';
import { CANARY_KEY, freePort, runCli, startCli, startEcho, startServer, eventually } from './helpers/index.js';
import { answer, startHostile, switching } from './helpers/hostile.js';
import { selfSignedCert } from './helpers/tls.js';

const KEY = CANARY_KEY;
const TAIL = KEY.slice(10);
const MODES = [['--verbose'], ['--json', '--verbose']];

function assertClean(text, where) {
  assert.ok(!text.includes(KEY) && !text.includes(TAIL), `key leaked into ${where}:\n${text}`);
}

/** Hostile answers that quote the request's credentials back, in every place a client may print. */
function echoingBehaviours() {
  const auth = (req) => req.headers.authorization ?? '';
  const bare = (req) => auth(req).replace(/^Bearer /, '');
  return {
    401: (req, socket) => answer(socket, 401, { error: `bad credentials ${auth(req)}`, code: bare(req) }),
    403: (req, socket) => answer(socket, 403, { error: `key ${bare(req)} may not`, code: 'FORBIDDEN' }),
    // The echoed key at the end of a long message: cutting before redacting would leave a fragment.
    404: (req, socket) => answer(socket, 404, { error: `${'x'.repeat(285)}${bare(req)}` }),
    502: (req, socket) => answer(socket, 502, { error: `nothing on port for ${bare(req)}` }),
    503: (req, socket) => answer(socket, 503, { error: `busy ${bare(req)}` }),
    302: (req, socket) => answer(socket, 302, '', `location: https://evil.example/?k=${bare(req)}\r\n`),
    // Not HTTP at all, but quoting the key.
    600: (req, socket) => socket.end(`HTTP/1.1 9999 ${bare(req)}\r\n${bare(req)}\r\n\r\n`),
    601: (req, socket) => socket.end(`${bare(req)} ${auth(req)}\r\n\r\n`),
    // After the upgrade: the key in a close reason (cut to 123 bytes on the wire), and in a text frame.
    700: (req, socket, head, { ws }) => ws((w) => w.close(4001, `${'r'.repeat(100)}${bare(req)}`.slice(0, 123))),
    701: (req, socket, head, { ws }) => ws((w) => w.close(4002, bare(req))),
    702: (req, socket, head, { ws }) => ws((w) => w.send(`text ${auth(req)}`)),
    703: (req, socket) => socket.write(switching(req, bare(req))),
  };
}

test('startup failures quoting the key (401, 403, 404, 5xx, redirects, garbage, TLS, unreachable) never print it', { timeout: 60_000 }, async () => {
  const hostile = await startHostile(echoingBehaviours());
  const wrongToken = await startServer({ token: 'a-different-token' });
  const cert = selfSignedCert();
  const tlsServer = cert ? await createTunnelServer({ token: KEY, tls: cert }) : undefined;
  const refused = await freePort();
  const cases = [
    { args: ['--proxy-url', wrongToken.url, 'sbx', '5432'], code: 3 },
    { args: ['--proxy-url', hostile.url, 'sbx', '401'], code: 3 },
    { args: ['--proxy-url', hostile.url, 'sbx', '403'], code: 3 },
    { args: ['--proxy-url', hostile.url, 'sbx', '404'], code: 4 },
    { args: ['--proxy-url', hostile.url, '--connect-timeout', '0.4', 'sbx', '503'], code: 1 },
    { args: ['--proxy-url', hostile.url, 'sbx', '302'], code: 1 },
    { args: ['--proxy-url', hostile.url, 'sbx', '600'], code: 1 },
    { args: ['--proxy-url', hostile.url, 'sbx', '601'], code: 1 },
    { args: ['--proxy-url', hostile.url, 'sbx', '703'], code: 1 },
    // TLS to a plain HTTP server, and to a certificate nobody trusts.
    { args: ['--proxy-url', wrongToken.url.replace('http:', 'https:'), 'sbx', '5432'], code: 6 },
    ...(tlsServer ? [{ args: ['--proxy-url', tlsServer.url, 'sbx', '5432'], code: 6 }] : []),
    { args: ['--proxy-url', `http://127.0.0.1:${refused}`, '--connect-timeout', '0.3', 'sbx', '5432'], code: 6 },
  ];
  try {
    for (const c of cases) {
      for (const mode of MODES) {
        const r = await runCli([...mode, ...c.args]);
        assert.equal(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /error/);
        if (mode.includes('--json')) {
          const events = r.stdout.trim().split('\n').map((line) => JSON.parse(line));
          assert.ok(events.some((e) => e.event === 'error' && e.fatal), r.stdout);
        }
      }
    }
    assert.ok(hostile.requests.every((q) => q.headers.authorization === `Bearer ${KEY}`));
  } finally {
    await hostile.close();
    await wrongToken.close();
    await tlsServer?.close();
  }
});

test('the key pasted into arguments, options or URLs is never quoted back', { timeout: 60_000 }, async () => {
  const viaEnv = [
    [KEY, '5432'],
    ['sbx', KEY],
    ['sbx', `${KEY}:5432`],
    ['--connect-timeout', KEY, 'sbx', '5432'],
    ['--max-connections', KEY, 'sbx', '5432'],
    ['--address', KEY, 'sbx', '5432'],
    [`--${KEY}`, 'sbx', '5432'],
    ['--proxy-url', KEY, 'sbx', '5432'],
    ['--proxy-url', `https://user:${KEY}@example.com`, 'sbx', '5432'],
    ['--proxy-url', `https://${KEY}@example.com`, 'sbx', '5432'],
    ['--proxy-url', `https://example.com/?key=${KEY}`, 'sbx', '5432'],
    ['--proxy-url', `https://example.com/${KEY}`, 'sbx', '5432'],
    ['--proxy-url', `https://example.com/#${KEY}`, 'sbx', '5432'],
    ['--proxy-url', `https://exa mple.com/?key=${KEY}`, 'sbx', '5432'],
    ['--proxy-url', `ftp://${KEY}@example.com`, 'sbx', '5432'],
    ['--proxy-url', `http://10.1.2.3/?k=${KEY}`, 'sbx', '5432'],
    ['--proxy-url', `http://u:${KEY}@10.1.2.3`, 'sbx', '5432'],
  ];
  for (const args of viaEnv) {
    for (const mode of MODES) {
      const r = await runCli([...mode, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  }
  // The key given only as a flag, then misplaced elsewhere on the same command line.
  const viaFlag = [
    ['--api-key', KEY, KEY, '5432'],
    [`--api-key=${KEY}`, '--linger', KEY, 'sbx', '5432'],
    ['--pat', KEY, 'sbx', KEY],
    ['--pat', KEY, '--proxy-url', `https://${KEY}@example.com`, 'sbx', '5432'],
  ];
  for (const args of viaFlag) {
    for (const mode of MODES) {
      const r = await runCli([...mode, ...args], { env: { TENSORLAKE_API_KEY: '' } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  }
});

test('a key with a space or control character is refused without being quoted', { timeout: 30_000 }, async () => {
  for (const bad of [`${KEY} x`, `${KEY}\x01`, `${KEY}\x7f`, `x ${KEY}`]) {
    for (const mode of MODES) {
      const r = await runCli([...mode, '--proxy-url', 'http://127.0.0.1:9', 'sbx', '5432'], { env: { TENSORLAKE_API_KEY: bad } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /spaces or control characters/);
    }
  }
});

test('errors after the tunnel opened (close reason, text frame) never quote the key', { timeout: 30_000 }, async () => {
  const hostile = await startHostile(echoingBehaviours());
  const cli = await startCli(['--verbose', '--no-check', '--proxy-url', hostile.url, 'sbx', ':700', ':701', ':702', ':502'], { mappings: 4 });
  try {
    for (const port of cli.ports) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('hello');
      await new Promise((resolve) => socket.on('close', resolve));
    }
    await cli.waitFor((ev) => ev.filter((e) => e.event === 'close').length >= 4, 10_000, 'four closes');
  } finally {
    const r = await cli.stop();
    await hostile.close();
    const errors = r.events.filter((e) => e.event === 'error');
    assert.deepEqual(errors.map((e) => e.code).sort(), ['TL_ERR_PORT_CLOSED', 'TL_ERR_PROTOCOL', 'TL_ERR_REMOTE_CLOSED', 'TL_ERR_REMOTE_CLOSED']);
    assert.match(r.stderr, /\[redacted\]/);
  }
});

/** Every way a caller may look at a rejection: message, JSON, inspect (stack, cause, fields). */
function assertErrorClean(err, key, where) {
  for (const text of [err.message, String(err.stack), JSON.stringify(err), JSON.stringify(err.toJSON?.() ?? {}), inspect(err, { depth: 6 }), String(err.detail), String(err.proxyError)]) {
    assert.ok(!text.includes(key), `${where}: key in error:\n${text}`);
  }
}

test('library: openTunnel rejections never carry the key, even one it has not seen before', { timeout: 60_000 }, async () => {
  const hostile = await startHostile(echoingBehaviours());
  const echo = await startEcho();
  let n = 0;
  // A fresh key per case: each case must redact on its own, not thanks to an earlier registration.
  const fresh = () => `tl_apiKey_LIBCANARY${process.pid}x${n++}q`;
  const cases = [
    (key) => ({ sandbox: key, ports: '5432' }),
    (key) => ({ sandbox: 'sbx', ports: key }),
    (key) => ({ sandbox: 'sbx', ports: [{ localPort: 0, remotePort: 5432, address: key }] }),
    (key) => ({ sandbox: 'sbx', ports: '5432', proxyUrl: key }),
    (key) => ({ sandbox: 'sbx', ports: '5432', proxyUrl: `https://u:${key}@example.com` }),
    (key) => ({ sandbox: 'sbx', ports: '5432', proxyUrl: `https://example.com/?k=${key}` }),
    (key) => ({ sandbox: 'sbx', ports: '5432', proxyUrl: `https://exa mple.com/${key}` }),
    (key) => ({ sandbox: 'sbx', ports: '5432', headers: { [key]: 'x y\n' } }),
    ...['401', '403', '404', '302', '600', '601', '703'].map((port) => () => ({ sandbox: 'sbx', ports: port, proxyUrl: hostile.url })),
    () => ({ sandbox: 'sbx', ports: '503', proxyUrl: hostile.url, connectTimeoutMs: 300 }),
  ];
  try {
    for (const make of cases) {
      const key = fresh();
      const options = make(key);
      const err = await openTunnel({ credentials: { apiKey: key }, ...options }).then(
        (h) => h.close().then(() => assert.fail(`opened: ${JSON.stringify(options)}`)),
        (e) => e,
      );
      assert.equal(err.name, 'TunnelError', inspect(err));
      assertErrorClean(err, key, JSON.stringify(options).replaceAll(key, 'KEY'));
    }
    for (const bad of [' x', '\x01', '\n']) {
      const key = fresh();
      const err = await openTunnel({ sandbox: 'sbx', ports: '5432', credentials: { pat: `${key}${bad}` }, proxyUrl: hostile.url }).catch((e) => e);
      assert.equal(err.code, 'TL_ERR_USAGE');
      assertErrorClean(err, key, 'malformed key');
    }
    // After the upgrade: close reasons echoing the key reach 'close' events redacted.
    const key = fresh();
    const handle = await openTunnel({ sandbox: 'sbx', ports: [':700', ':701', ':702', ':502'], credentials: { apiKey: key }, proxyUrl: hostile.url, check: false });
    const closes = [];
    handle.on('close', (e) => closes.push(e));
    for (const a of handle.addresses.filter((x) => x.family === 'IPv4')) {
      const socket = net.connect(a.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('x');
    }
    await eventually(() => closes.length === 4, { what: 'four closes', timeoutMs: 10_000 });
    await handle.close();
    for (const c of closes) {
      assert.ok(c.error, inspect(c));
      assertErrorClean(c.error, key, `close ${c.remotePort}`);
      assert.ok(!c.reason.includes(key));
    }
  } finally {
    await hostile.close();
    await echo.close();
  }
});

test('redact() hides registered keys in every quoted form, Bearer tokens and URL userinfo', () => {
  const key = `tl_apiKey_RED"ACT\\${process.pid}`;
  registerSecret(key);
  const samples = [
    `plain ${key} end`,
    JSON.stringify({ message: `in json ${key}` }),
    `https://example.com/?k=${encodeURIComponent(key)}`,
  ];
  for (const s of samples) assert.ok(!redact(s).includes(key) && !redact(s).includes(JSON.stringify(key).slice(1, -1)) && !redact(s).includes(encodeURIComponent(key)), redact(s));
  assert.equal(redact('Authorization: Bearer abc.def-ghi'), 'Authorization: Bearer [redacted]');
  assert.equal(redact('connect https://user:pw@host:1/x failed'), 'connect https://[redacted]@host:1/x failed');
  assert.equal(redact('connect wss://lonetoken@host failed'), 'connect wss://[redacted]@host failed');
  assert.equal(redact('see https://host/path@x'), 'see https://host/path@x');
  // Errors from Node and ws that quote URLs with credentials.
  let nodeError;
  try {
    new URL(`http://u:${key}@ho st`);
  } catch (err) {
    nodeError = err;
  }
  assert.ok(!redact(String(nodeError?.input ?? nodeError?.message)).includes(key));
});
