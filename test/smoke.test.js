import test from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, startServer, startCli, echoRoundTrip, runCli, randomBytes, sha256 } from './helpers/index.js';

test('CLI forwards a connection through the reference server', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-1', `:${echo.port}`]);
  try {
    const data = randomBytes(100_000);
    const back = await echoRoundTrip(cli.port, data);
    assert.equal(sha256(back), sha256(data));
  } finally {
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.events.some((e) => e.event === 'stopped'));
    await server.close();
    await echo.close();
  }
});

test('bad sandbox name is a usage error', async () => {
  const r = await runCli(['sb.x', '5432']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Invalid sandbox/);
});
