// Where the key goes: every <sandbox> and --proxy-url input is either refused as a usage error
// (exit 2) or produces exactly the expected upgrade, checked on what the reference server receives.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { openTunnel, parseSandboxName, resolveProxyTarget, tunnelUrl } from '../dist/index.js';
import { CANARY_KEY, listen, runCli, startCli, startEcho, startServer, sandboxOf } from './helpers/index.js';

const TUNNEL = '/api/v1/tunnels/tcp';

/** Records what reached the server: request target, Host, sandbox header, credentials. */
function record(server) {
  const seen = [];
  server.on('request', (req) => {
    seen.push({ url: req.url, host: req.headers.host, sandbox: sandboxOf(req.headers), auth: req.headers.authorization });
  });
  return seen;
}

// Refused as typed: they would change the lookup's path, or cannot travel in a header.
const BAD_SANDBOXES = [
  '', 'a'.repeat(129), 'sbx#x', 'sbx/x', 'sbx\\x', 'sbx%2eevil', '%2e', '%2e%2e',
  'sbx x', ' sbx', 'sbx ', 'sbx\n', 'sbx\t', 'sbx\0', 'sbx?port=1',
  // Look-alikes: Cyrillic "ѕ", the Kelvin sign (lower-cases to ASCII "k"), full-width letters, a dotless i.
  'ѕbx', '\u212Asbx', 'ｓｂｘ', 'sbıx', 'sbx\u200b',
];
// Sent to the control plane as typed, but never part of a host name (<id>.sandbox.tensorlake.ai, Host: <id>.local).
const NOT_HOST_LABELS = [
  'a'.repeat(64), 'sbx.evil.com', 'sbx.', '.sbx', 'sbx@evil.com', '.', '..', '-sbx', 'sbx-', 'sbx_1', 'sbx:80',
  // Punycode labels: the URL parser would decode (or refuse) them.
  'xn--sbx-1', 'XN--a', 'xn--80ak6aa92e',
];
const GOOD_SANDBOXES = [
  ['sbx-1', 'sbx-1'],
  ['SBX-Upper-9', 'sbx-upper-9'],
  ['a', 'a'],
  ['0', '0'],
  ['a'.repeat(63), 'a'.repeat(63)],
];

test('sandbox names: as typed unless they would move the request; only DNS labels become hosts, under sandbox.tensorlake.ai', () => {
  for (const bad of BAD_SANDBOXES) {
    assert.throws(() => parseSandboxName(bad), (err) => err.code === 'TL_ERR_USAGE', JSON.stringify(bad));
  }
  for (const typed of NOT_HOST_LABELS) {
    assert.equal(parseSandboxName(typed), typed);
    assert.throws(() => resolveProxyTarget(typed, undefined), (err) => err.code === 'TL_ERR_USAGE' && /cannot be part of a host name/.test(err.message), JSON.stringify(typed));
  }
  for (const [input, name] of GOOD_SANDBOXES) {
    assert.equal(parseSandboxName(input), input);
    const target = resolveProxyTarget(input, undefined);
    assert.deepEqual(target, { origin: `wss://${name}.sandbox.tensorlake.ai`, hostname: `${name}.sandbox.tensorlake.ai`, secure: true, perSandboxHost: true });
    assert.equal(tunnelUrl(target, 5432), `wss://${name}.sandbox.tensorlake.ai${TUNNEL}?port=5432`);
  }
});

test('CLI: bad sandbox names exit 2 before any request; good ones reach a local proxy as Host <sandbox>.local', { timeout: 60_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const seen = record(server);
  try {
    for (const bad of BAD_SANDBOXES.filter((s) => !s.includes('\0'))) {
      const r = await runCli(['--proxy-url', server.url, '--', bad, String(echo.port)]);
      assert.equal(r.code, 2, `${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, /Invalid sandbox/);
    }
    // A local proxy routes on Host <id>.local: a name that is no DNS label cannot go there.
    for (const typed of NOT_HOST_LABELS.slice(0, 4)) {
      const r = await runCli(['--proxy-url', server.url, '--', typed, String(echo.port)]);
      assert.equal(r.code, 2, `${JSON.stringify(typed)}: ${r.stderr}`);
      assert.match(r.stderr, /cannot be part of a host name/);
    }
    assert.equal(seen.length, 0, 'no upgrade for a refused sandbox');
    for (const [input, name] of GOOD_SANDBOXES) {
      seen.length = 0;
      const cli = await startCli(['--proxy-url', server.url, input, `:${echo.port}`]);
      const r = await cli.stop();
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(seen, [{ url: `${TUNNEL}?port=${echo.port}`, host: `${name}.local`, sandbox: name, auth: `Bearer ${CANARY_KEY}` }]);
    }
  } finally {
    await server.close();
    await echo.close();
  }
});

// <P> is replaced by the reference server's port. `host` is the Host header the server must see.
const GOOD_URLS = [
  ['http://127.0.0.1:<P>', '127.0.0.1:<P>'],
  ['http://127.0.0.1:<P>/', '127.0.0.1:<P>'],
  ['HTTP://127.0.0.1:<P>', '127.0.0.1:<P>'],
  ['ws://127.0.0.1:<P>', '127.0.0.1:<P>'],
  ['WS://127.0.0.1:<P>/', '127.0.0.1:<P>'],
  ['http://localhost:<P>', 'localhost:<P>'],
  // Other spellings of 127.0.0.1 that the URL standard normalises.
  ['http://127.1:<P>', '127.0.0.1:<P>'],
  ['http://0x7f.0.0.1:<P>', '127.0.0.1:<P>'],
  ['http://2130706433:<P>', '127.0.0.1:<P>'],
  ['http://127%2e0%2e0%2e1:<P>', '127.0.0.1:<P>'],
  // Dot segments collapse to the bare base: nothing of them reaches the request.
  ['http://127.0.0.1:<P>/.', '127.0.0.1:<P>'],
  ['http://127.0.0.1:<P>/%2e', '127.0.0.1:<P>'],
  ['http://127.0.0.1:<P>/%2e%2e', '127.0.0.1:<P>'],
];

const BAD_URLS = [
  // Paths, queries and fragments on the base.
  'http://127.0.0.1:<P>/api', 'http://127.0.0.1:<P>/api/v1/tunnels/tcp', 'http://127.0.0.1:<P>/?port=1', 'http://127.0.0.1:<P>?',
  'http://127.0.0.1:<P>#', 'http://127.0.0.1:<P>/#x', 'http://127.0.0.1:<P>/%2e%2e/x', 'http://127.0.0.1:<P>/%2f',
  // Credentials, and @ / # / \ tricks that move the host.
  'http://u:p@127.0.0.1:<P>', 'http://u@127.0.0.1:<P>', 'http://:p@127.0.0.1:<P>', 'http://127.0.0.1:<P>@evil.example',
  'http://evil.example#@127.0.0.1:<P>', 'http://evil.example\\@127.0.0.1:<P>', 'http://evil.example%23@127.0.0.1:<P>',
  // Other schemes and no scheme.
  'ftp://127.0.0.1:<P>', 'file:///etc/passwd', 'javascript:alert(1)', 'unix:/tmp/sock', 'http+unix://x', 'data:,x', 'gopher://127.0.0.1:<P>',
  '127.0.0.1:<P>', 'localhost:<P>', '//127.0.0.1:<P>', 'http://', 'https://', 'http://127.0.0.1:99999', 'x'.repeat(300),
  // Spaces, control characters and look-alikes, which the URL parser would drop or map.
  ' http://127.0.0.1:<P>', 'http://127.0.0.1:<P> ', 'http://127.0.0.1:<P>\t', 'http://127.0.\t0.1:<P>', 'http://127.0.0.1:<P>\n',
  'http://ｌｏｃａｌｈｏｓｔ:<P>', 'http://lоcalhost:<P>', 'http://127。0。0。1:<P>', '',
  // Clear text to hosts that are not this machine.
  'http://10.1.2.3:<P>', 'ws://example.com', 'http://example.com:<P>', 'http://localhost.:<P>', 'http://127.0.0.1.nip.io:<P>',
  'http://0.0.0.0:<P>', 'http://[::]:<P>', 'http://[::ffff:127.0.0.1]:<P>',
];

test('proxy URLs: in-process, each is refused as a usage error or maps to the expected origin', () => {
  for (const [template, host] of GOOD_URLS) {
    const target = resolveProxyTarget('sbx-1', template.replaceAll('<P>', '8080'));
    assert.equal(target.origin, `ws://${host.replaceAll('<P>', '8080')}`, template);
    assert.equal(target.perSandboxHost, false);
  }
  for (const template of BAD_URLS) {
    assert.throws(() => resolveProxyTarget('sbx-1', template.replaceAll('<P>', '8080')), (err) => err.code === 'TL_ERR_USAGE', JSON.stringify(template));
  }
  // The same refusals hold with --allow-insecure, except for plain clear text to a remote host.
  assert.equal(resolveProxyTarget('sbx-1', 'http://10.1.2.3:80', true).origin, 'ws://10.1.2.3');
  assert.throws(() => resolveProxyTarget('sbx-1', 'http://u:p@10.1.2.3', true), (err) => err.code === 'TL_ERR_USAGE');
  for (const [url, origin] of [['https://sandbox.us-east-1.aws.tensorlake.ai', 'wss://sandbox.us-east-1.aws.tensorlake.ai'], ['wss://h.example:8443/', 'wss://h.example:8443'], ['https://[2001:db8::1]', 'wss://[2001:db8::1]']]) {
    assert.deepEqual(resolveProxyTarget('sbx-1', url), { origin, hostname: new URL(url).hostname.replace(/^\[|\]$/g, ''), secure: true, perSandboxHost: false });
  }
});

test('CLI: proxy URLs reach the server with exactly the expected request, Host and sandbox header, or exit 2', { timeout: 60_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const seen = record(server);
  const port = String(server.port);
  try {
    for (const [template, host] of GOOD_URLS) {
      seen.length = 0;
      const cli = await startCli(['--proxy-url', template.replaceAll('<P>', port), 'sbx-1', `:${echo.port}`]);
      const r = await cli.stop();
      assert.equal(r.code, 0, `${template}: ${r.stderr}`);
      assert.deepEqual(seen, [{ url: `${TUNNEL}?port=${echo.port}`, host: 'sbx-1.local', sandbox: 'sbx-1', auth: `Bearer ${CANARY_KEY}` }], template);
    }
    seen.length = 0;
    for (const template of BAD_URLS) {
      const url = template.replaceAll('<P>', port);
      const r = await runCli(['--proxy-url', url, 'sbx-1', String(echo.port)]);
      assert.equal(r.code, 2, `${JSON.stringify(url)}: ${r.stderr}`);
      assert.match(r.stderr, /proxy URL|clear text/i, url);
    }
    // The same through the environment variable.
    const r = await runCli(['sbx-1', String(echo.port)], { env: { TENSORLAKE_SANDBOX_PROXY_URL: `http://u:p@127.0.0.1:${port}` } });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(seen.length, 0, `refused URLs made no request: ${JSON.stringify(seen)}`);
  } finally {
    await server.close();
    await echo.close();
  }
});

test('CLI: an IPv6 loopback base gets the sandbox-id header: only localhost and 127.0.0.1 mean a local stack (Host <sandbox>.local), as upstream', { timeout: 20_000 }, async (t) => {
  let server;
  try {
    server = await startServer({ host: '::1' });
  } catch {
    t.skip('no IPv6 loopback here');
    return;
  }
  const echo = await startEcho();
  const seen = record(server);
  try {
    const cli = await startCli(['--proxy-url', server.url, 'sbx-1', `:${echo.port}`]);
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(seen, [{ url: `${TUNNEL}?port=${echo.port}`, host: `[::1]:${server.port}`, sandbox: 'sbx-1', auth: `Bearer ${CANARY_KEY}` }]);
  } finally {
    await server.close();
    await echo.close();
  }
});

test('clear text to a non-loopback host is refused before any connection, even through an HTTP proxy', { timeout: 20_000 }, async () => {
  // An HTTP proxy we control: if anything tried to connect (directly or through HTTP(S)_PROXY), it would show here.
  const attempts = [];
  const trap = net.createServer((s) => {
    attempts.push(s.remoteAddress);
    s.destroy();
  });
  const trapPort = await listen(trap);
  const proxyEnv = { HTTP_PROXY: `http://127.0.0.1:${trapPort}`, HTTPS_PROXY: `http://127.0.0.1:${trapPort}`, ALL_PROXY: `http://127.0.0.1:${trapPort}` };
  try {
    for (const url of ['http://10.1.2.3:9443', 'ws://203.0.113.7', 'http://example.com']) {
      const r = await runCli(['--proxy-url', url, 'sbx-1', '5432'], { env: proxyEnv });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /clear text.*--allow-insecure/);
      assert.throws(() => resolveProxyTarget('sbx-1', url), (err) => err.code === 'TL_ERR_USAGE');
      const err = await openTunnel({ sandbox: 'sbx-1', ports: '5432', credentials: { apiKey: CANARY_KEY }, proxyUrl: url }).catch((e) => e);
      assert.equal(err.code, 'TL_ERR_USAGE');
    }
    assert.deepEqual(attempts, []);
  } finally {
    trap.close();
    await once(trap, 'close');
  }
});

test('library headers cannot replace the credentials or the sandbox header', { timeout: 20_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const seen = record(server);
  try {
    const handle = await openTunnel({
      sandbox: 'sbx-1',
      ports: `:${echo.port}`,
      credentials: { apiKey: CANARY_KEY },
      proxyUrl: server.url,
      headers: { Authorization: 'Bearer someone-else', 'X-Tensorlake-Sandbox-Id': 'other-sandbox' },
    });
    await handle.close();
    assert.deepEqual(seen, [{ url: `${TUNNEL}?port=${echo.port}`, host: 'sbx-1.local', sandbox: 'sbx-1', auth: `Bearer ${CANARY_KEY}` }]);
  } finally {
    await server.close();
    await echo.close();
  }
});
