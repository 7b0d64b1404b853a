// wss:// with a private CA made at test time: the CLI trusts it through NODE_EXTRA_CA_CERTS and
// nothing else, and without it fails with exit 6 and a line that says what to do.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { openTunnel } from '../dist/index.js';
import { CANARY_KEY, echoRoundTrip, randomBytes, runCli, sha256, startCli, startEcho, startServer } from './helpers/index.js';
import { makeTestCa } from './helpers/tls.js';

let ca;
let echo;
let server;

test.before(async () => {
  ca = makeTestCa();
  echo = await startEcho();
  server = await startServer({ tls: { cert: ca.cert, key: ca.key } });
});

test.after(async () => {
  await server?.close();
  await echo?.close();
  ca?.close();
});

for (const host of ['localhost', '127.0.0.1']) {
  test(`CLI over wss://${host} with the CA in NODE_EXTRA_CA_CERTS round-trips data`, { timeout: 30_000 }, async () => {
    const opened = [];
    const onOpen = (e) => opened.push(e);
    server.on('open', onOpen);
    const cli = await startCli(['--proxy-url', `https://${host}:${server.port}`, 'sbx-1', `:${echo.port}`], { env: { NODE_EXTRA_CA_CERTS: ca.caFile } });
    try {
      const data = randomBytes(4 * 1024 * 1024);
      const back = await echoRoundTrip(cli.port, data);
      assert.equal(sha256(back), sha256(data));
      assert.ok(opened.length >= 1, 'the tunnel went through the TLS server');
    } finally {
      server.off('open', onOpen);
      const r = await cli.stop();
      assert.equal(r.code, 0, r.stderr);
    }
  });
}

test('without the CA the CLI exits 6 naming TLS, the host and NODE_EXTRA_CA_CERTS', { timeout: 30_000 }, async () => {
  const r = await runCli(['--proxy-url', `https://localhost:${server.port}`, 'sbx-1', String(echo.port)]);
  assert.equal(r.code, 6, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('error '));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /TLS/);
  assert.match(lines[0], /localhost/);
  assert.match(lines[0], /NODE_EXTRA_CA_CERTS/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('a certificate for another name fails TLS even with the CA trusted (exit 6)', { timeout: 30_000 }, async (t) => {
  // 127.0.0.2 reaches the same loopback interface but is not in the certificate.
  const other = await startServer({ host: '127.0.0.2', tls: { cert: ca.cert, key: ca.key } }).catch(() => undefined);
  if (!other) {
    t.skip('cannot listen on 127.0.0.2 here');
    return;
  }
  try {
    const r = await runCli(['--proxy-url', `https://127.0.0.2:${other.port}`, 'sbx-1', String(echo.port)], { env: { NODE_EXTRA_CA_CERTS: ca.caFile } });
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, /error TLS with 127\.0\.0\.2:\d+ failed/);
  } finally {
    await other.close();
  }
});

test('library over wss with a CA given through an https.Agent', { timeout: 30_000 }, async () => {
  const agent = new https.Agent({ ca: readFileSync(ca.caFile) });
  const tunnel = await openTunnel({ sandbox: 'sbx-1', ports: `:${echo.port}`, credentials: { apiKey: CANARY_KEY }, proxyUrl: `https://localhost:${server.port}`, agent });
  try {
    const data = randomBytes(256 * 1024);
    assert.equal(sha256(await echoRoundTrip(tunnel.addresses[0].port, data)), sha256(data));
  } finally {
    await tunnel.close();
    agent.destroy();
  }
});
