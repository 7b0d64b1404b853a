// Secrets are hidden wherever they are typed or echoed, short ones too, and redaction never
// corrupts what it passes through (numbers, JSON lines, the hints of our own messages).
import test from 'node:test';
import assert from 'node:assert/strict';
import { redact, redactStrict, registerSecret, TunnelError } from '../dist/index.js';
import { runCli, startCli, startEcho, startServer, echoRoundTrip, randomBytes } from './helpers/index.js';
import { answer, startHostile } from './helpers/hostile.js';
import { startRefusingProxy } from './helpers/proxies.js';

test('a Tensorlake key pasted as the sandbox is not printed back, with no key configured', async () => {
  const r = await runCli(['tl_apiKey_REALSECRET0001', 'sbx-123', '5432'], { env: { TENSORLAKE_API_KEY: '' } });
  assert.equal(r.code, 2, r.stderr);
  assert.doesNotMatch(r.stderr + r.stdout, /REALSECRET0001/);
  // Refused before any lookup could carry it in a URL path, and not quoted back.
  assert.match(r.stderr, /^error Invalid sandbox: that looks like an API key or token/m);
});

test('the hints of our own messages survive redaction (tl_apiKey_..., http://user:password@host:port)', async () => {
  const none = await runCli(['sbx-1', '5432'], { env: { TENSORLAKE_API_KEY: '' } });
  assert.match(none.stderr, /TENSORLAKE_API_KEY=tl_apiKey_\.\.\./);
  const proxy = await runCli(['--proxy', 'http://[bad', 'sbx-1', '5432']);
  assert.equal(proxy.code, 2, proxy.stderr);
  assert.match(proxy.stderr, /http:\/\/user:password@host:port/);
});

test('a 5-character key echoed in a 401 body is redacted', async () => {
  const hostile = await startHostile({ 7: (req, socket) => answer(socket, 401, { error: 'token k3y5z is not valid', code: 'k3y5z' }) });
  try {
    for (const json of [[], ['--json']]) {
      const r = await runCli([...json, '--api-key', 'k3y5z', '--proxy-url', hostile.url, 'sbx-1', '7']);
      assert.equal(r.code, 3, r.stderr);
      assert.doesNotMatch(r.stderr + r.stdout, /k3y5z/);
      assert.match(r.stderr, /token \[redacted\] is not valid/);
    }
  } finally {
    await hostile.close();
  }
});

test('a wrong HTTP proxy password (407 and 401): "refused the credentials", exit 6, the 3-character password never shown', async () => {
  for (const status of [407, 401]) {
    const proxy = await startRefusingProxy(status, { error: `bad password pw9 for proxy`, code: 'pw9' });
    try {
      // A short user name is not a secret: "proxy" must not vanish from "The HTTP proxy ...".
      const url = proxy.url.replace('http://', 'http://proxy:pw9@');
      const r = await runCli(['--json', '--proxy', url, '--proxy-url', 'https://127.0.0.1:9', 'sbx-1', '5432']);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, new RegExp(`refused the credentials in the proxy URL \\(${status}; proxy said: bad password \\[redacted\\] for .*; check the user name and password`));
      assert.doesNotMatch(r.stderr + r.stdout, /pw9/);
      assert.match(r.stderr, /^error The HTTP proxy 127\.0\.0\.1:\d+ refused/m);
      const error = JSON.parse(r.stdout.trim().split('\n').at(-1));
      assert.equal(error.code, 'TL_ERR_HTTP_PROXY');
    } finally {
      await proxy.close();
    }
  }
});

test('a numeric key never corrupts numbers: every JSON line parses and bytesSent is exact', async () => {
  const echo = await startEcho();
  const server = await startServer({ token: '424242' });
  const cli = await startCli(['--api-key', '424242', '--proxy-url', server.url, 'sbx-1', `:${echo.port}`]);
  try {
    const data = randomBytes(1424242);
    const back = await echoRoundTrip(cli.port, data);
    assert.equal(back.length, data.length);
    await cli.waitFor((ev) => ev.some((e) => e.event === 'close'), 10_000, 'close');
  } finally {
    // startCli parses every stdout line: a corrupted one throws.
    const r = await cli.stop();
    await server.close();
    await echo.close();
    const close = r.events.find((e) => e.event === 'close');
    assert.equal(close.bytesSent, 1424242);
    assert.equal(r.events.at(-1).event, 'stopped');
    assert.equal(r.events.at(-1).bytesSent, 1424242);
  }
});

test('library: short and numeric secrets are hidden only as whole tokens, and only by redactStrict', () => {
  registerSecret('q7x');
  registerSecret('90817263');
  assert.equal(redactStrict('password q7x was wrong'), 'password [redacted] was wrong');
  assert.equal(redactStrict('aq7xb stays'), 'aq7xb stays');
  assert.equal(redact('password q7x was wrong'), 'password q7x was wrong');
  assert.equal(redactStrict('bytes 1908172634 pin 90817263.'), 'bytes 1908172634 pin [redacted].');
  assert.equal(new TunnelError('TL_ERR_AUTH', 'key q7x rejected').message, 'key [redacted] rejected');
  assert.equal(redact('send tl_apiKey_abcDEF012_-x to me'), 'send [redacted] to me');
  assert.equal(redact('http://user:password@host:port and http://bob:s3cretpass@proxy:3128'), 'http://user:password@host:port and http://[redacted]@proxy:3128');
});
