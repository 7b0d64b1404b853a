// HTTP CONNECT proxies: HTTPS_PROXY for wss, HTTP_PROXY for ws, NO_PROXY, --proxy, and proxies that
// refuse. Through a real tinyproxy on loopback; a missing tinyproxy fails the test (.ci/run installs it).
import test from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, startServer, startCli, runCli, echoRoundTrip, freePort, eventually, randomBytes, sha256 } from './helpers/index.js';
import { needsTools } from './helpers/services.js';

const toolSkip = needsTools('tinyproxy');
import { TINYPROXY, startTinyproxy, startRefusingProxy, makeCertificate } from './helpers/proxies.js';
import { bypassesProxy, chooseHttpProxy } from '../dist/cli/proxy-env.js';

function requireTinyproxy() {
  assert.ok(TINYPROXY, 'tinyproxy not found in /usr/bin or /usr/sbin: install the Debian package tinyproxy (.ci/run does)');
}

test('NO_PROXY rules: *, host, subdomains, .suffix and *.suffix, ports, IPv6', () => {
  const cases = [
    ['*', 'sbx.sandbox.tensorlake.ai', 443, true],
    ['tensorlake.ai', 'sbx.sandbox.tensorlake.ai', 443, true],
    ['.tensorlake.ai', 'sbx.sandbox.tensorlake.ai', 443, true],
    ['*.tensorlake.ai', 'sbx.sandbox.tensorlake.ai', 443, true],
    ['.tensorlake.ai', 'tensorlake.ai', 443, true],
    ['lake.ai', 'sbx.sandbox.tensorlake.ai', 443, false],
    ['example.com, tensorlake.ai:443', 'sbx.sandbox.tensorlake.ai', 443, true],
    ['tensorlake.ai:8443', 'sbx.sandbox.tensorlake.ai', 443, false],
    ['127.0.0.1', '127.0.0.1', 9443, true],
    ['127.0.0.1:9443', '127.0.0.1', 9443, true],
    ['127.0.0.1:9444', '127.0.0.1', 9443, false],
    ['localhost', '127.0.0.1', 9443, false],
    ['::1', '::1', 9443, true],
    ['[::1]:9443', '[::1]', 9443, true],
    ['SANDBOX.TensorLake.AI', 'sbx.sandbox.tensorlake.ai', 443, true],
    ['', 'sbx.sandbox.tensorlake.ai', 443, false],
    [' , ', 'sbx.sandbox.tensorlake.ai', 443, false],
  ];
  for (const [noProxy, host, port, expected] of cases) {
    assert.equal(bypassesProxy(noProxy, host, port), expected, `NO_PROXY=${JSON.stringify(noProxy)} ${host}:${port}`);
  }
});

test('which variable applies: https_proxy/HTTPS_PROXY for wss, http_proxy/HTTP_PROXY for ws, lower case first; --proxy overrides', { skip: toolSkip }, () => {
  const wss = { secure: true, hostname: 'sbx.sandbox.tensorlake.ai', port: 443 };
  const ws = { secure: false, hostname: '127.0.0.1', port: 9443 };
  assert.equal(chooseHttpProxy(wss, undefined, { HTTPS_PROXY: 'http://a:1', HTTP_PROXY: 'http://b:2' })?.url.host, 'a:1');
  assert.equal(chooseHttpProxy(ws, undefined, { HTTPS_PROXY: 'http://a:1', HTTP_PROXY: 'http://b:2' })?.url.host, 'b:2');
  assert.equal(chooseHttpProxy(wss, undefined, { https_proxy: 'http://c:3', HTTPS_PROXY: 'http://a:1' })?.source, 'https_proxy');
  assert.equal(chooseHttpProxy(wss, undefined, { HTTPS_PROXY: 'proxy.corp:3128' })?.url.href, 'http://proxy.corp:3128/');
  assert.equal(chooseHttpProxy(wss, undefined, { HTTP_PROXY: 'http://b:2' }), undefined);
  assert.equal(chooseHttpProxy(wss, undefined, { HTTPS_PROXY: 'http://a:1', no_proxy: '.tensorlake.ai' }), undefined);
  assert.equal(chooseHttpProxy(wss, undefined, { HTTPS_PROXY: '' }), undefined);
  assert.equal(chooseHttpProxy(wss, 'http://d:4', { HTTPS_PROXY: 'http://a:1', NO_PROXY: '*' })?.source, '--proxy');
  assert.throws(() => chooseHttpProxy(wss, undefined, { HTTPS_PROXY: 'socks5://u:secretpw@a:1' }), (err) => err.code === 'TL_ERR_USAGE' && /HTTPS_PROXY/.test(err.message) && !err.message.includes('secretpw'));
});

/**
 * Forwards through tinyproxy to the reference server (over TLS when `tls`), checks the bytes and
 * that tinyproxy carried both the startup check and the connection. `args` and `env` get the
 * proxy's URL. Returns the CLI's stderr and the proxy's port.
 */
async function forwardThroughTinyproxy({ tls = false, args = () => [], env }) {
  const cert = tls ? await makeCertificate() : undefined;
  const echo = await startEcho();
  const server = await startServer(cert ? { tls: { cert: cert.cert, key: cert.key } } : {});
  const proxy = await startTinyproxy();
  assert.match(server.url, tls ? /^https:/ : /^http:/);
  const cli = await startCli(['-v', ...args(proxy.url), '--proxy-url', server.url, 'sbx-px', `:${echo.port}`], {
    env: { ...env(proxy.url), ...(cert ? { NODE_EXTRA_CA_CERTS: cert.caFile } : {}) },
  });
  try {
    const data = randomBytes(200_000);
    assert.equal(sha256(await echoRoundTrip(cli.port, data)), sha256(data));
    await eventually(() => proxy.connects(`127.0.0.1:${server.port}`) >= 2, { what: 'two CONNECTs in the tinyproxy log' });
  } finally {
    const r = await cli.stop();
    await proxy.close();
    await server.close();
    await echo.close();
    await cert?.close();
    assert.equal(r.code, 0, r.stderr);
    return { stderr: r.stderr, proxyPort: proxy.port };
  }
}

test('ws:// through tinyproxy (HTTP_PROXY); HTTPS_PROXY is not used for ws', async () => {
  requireTinyproxy();
  const dead = await freePort();
  const r = await forwardThroughTinyproxy({ env: (url) => ({ HTTP_PROXY: url, HTTPS_PROXY: `http://127.0.0.1:${dead}` }) });
  assert.match(r.stderr, new RegExp(`^HTTP proxy http://127\\.0\\.0\\.1:${r.proxyPort} for the tunnels \\(from HTTP_PROXY\\)$`, 'm'));
});

test('wss:// through tinyproxy (HTTPS_PROXY) to a TLS reference server; HTTP_PROXY is not used for wss', async () => {
  requireTinyproxy();
  const dead = await freePort();
  const r = await forwardThroughTinyproxy({ tls: true, env: (url) => ({ HTTPS_PROXY: url, HTTP_PROXY: `http://127.0.0.1:${dead}` }) });
  assert.match(r.stderr, /\(from HTTPS_PROXY\)/);
});

test('--proxy overrides the proxy variables and NO_PROXY', async () => {
  requireTinyproxy();
  const dead = await freePort();
  const r = await forwardThroughTinyproxy({ args: (url) => ['--proxy', url], env: () => ({ HTTP_PROXY: `http://127.0.0.1:${dead}`, NO_PROXY: '*' }) });
  assert.match(r.stderr, /\(from --proxy\)/);
});

test('NO_PROXY bypasses the proxy (a dead HTTPS_PROXY is not touched); a non-matching rule does not', async () => {
  const cert = await makeCertificate();
  const echo = await startEcho();
  const server = await startServer({ tls: { cert: cert.cert, key: cert.key } });
  const dead = await freePort();
  const base = { HTTPS_PROXY: `http://127.0.0.1:${dead}`, NODE_EXTRA_CA_CERTS: cert.caFile };
  try {
    for (const noProxy of ['127.0.0.1', '*', `127.0.0.1:${server.port}`, 'example.com,127.0.0.1']) {
      const cli = await startCli(['--proxy-url', server.url, 'sbx-px', `:${echo.port}`], { env: { ...base, no_proxy: noProxy } });
      const data = Buffer.from(`bypass ${noProxy}`);
      assert.deepEqual(await echoRoundTrip(cli.port, data), data);
      const r = await cli.stop();
      assert.equal(r.code, 0, `NO_PROXY=${noProxy}: ${r.stderr}`);
    }
    for (const noProxy of ['localhost', `127.0.0.1:${server.port + 1}`, '']) {
      // A refused connection is retried until the connect timeout: keep it short.
      const r = await runCli(['--connect-timeout', '1', '--proxy-url', server.url, 'sbx-px', `${echo.port}`], { env: { ...base, NO_PROXY: noProxy } });
      assert.equal(r.code, 6, `NO_PROXY=${noProxy}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error Cannot reach the HTTP proxy 127\\.0\\.0\\.1:${dead} \\(ECONNREFUSED\\)`, 'm'));
      assert.match(r.stderr, /check --proxy or HTTPS_PROXY \/ HTTP_PROXY/);
    }
  } finally {
    await server.close();
    await echo.close();
    await cert.close();
  }
});

test('a proxy that refuses the CONNECT (tinyproxy 403) gets its own line and exit 6, not an auth error', { skip: toolSkip }, async () => {
  requireTinyproxy();
  const echo = await startEcho();
  const server = await startServer();
  const proxy = await startTinyproxy({ connectPorts: [1] });
  try {
    const r = await runCli(['--json', '--proxy-url', server.url, 'sbx-px', `${echo.port}`], { env: { HTTP_PROXY: proxy.url } });
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, new RegExp(`^error The HTTP proxy 127\\.0\\.0\\.1:${proxy.port} refused to connect to 127\\.0\\.0\\.1:\\d+ \\(403\\).*NO_PROXY`, 'm'));
    const error = JSON.parse(r.stdout.trim().split('\n').at(-1));
    assert.equal(error.code, 'TL_ERR_HTTP_PROXY');
    assert.equal(error.status, 403);
  } finally {
    await proxy.close();
    await server.close();
    await echo.close();
  }
});

test('a proxy that wants authentication (407) gets its own line; proxy credentials are sent but never shown', async () => {
  const server = await startServer();
  const proxy = await startRefusingProxy(407);
  const password = 'pr0xyS3cret-Pa55word';
  try {
    const bare = await runCli(['--proxy-url', server.url, 'sbx-px', '5432'], { env: { HTTP_PROXY: proxy.url } });
    assert.equal(bare.code, 6, bare.stderr);
    assert.match(bare.stderr, new RegExp(`^error The HTTP proxy 127\\.0\\.0\\.1:${proxy.port} requires authentication \\(407\\): put user:password in the proxy URL`, 'm'));

    const url = `http://alice:${encodeURIComponent(password)}@127.0.0.1:${proxy.port}`;
    const r = await runCli(['-v', '--json', '--proxy', url, '--proxy-url', server.url, 'sbx-px', '5432']);
    assert.equal(r.code, 6, r.stderr);
    const head = proxy.heads.at(-1);
    assert.match(head, new RegExp(`^CONNECT 127\\.0\\.0\\.1:${server.port} HTTP/1\\.1`));
    const auth = /^proxy-authorization: Basic (\S+)$/im.exec(head);
    assert.equal(Buffer.from(auth[1], 'base64').toString(), `alice:${password}`);
    assert.match(r.stderr, /HTTP proxy http:\/\/127\.0\.0\.1:\d+ for the tunnels \(from --proxy\) with credentials/);
    for (const text of [r.stderr, r.stdout]) {
      assert.ok(!text.includes(password) && !text.includes(encodeURIComponent(password)) && !text.includes(auth[1]), text);
    }
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('an unsupported proxy scheme is a usage error naming the variable', async () => {
  const r = await runCli(['--proxy-url', 'https://127.0.0.1:9', 'sbx-px', '5432'], { env: { HTTPS_PROXY: 'socks5://127.0.0.1:1080' } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /Unsupported proxy scheme "socks5:" in HTTPS_PROXY/);
});
