// A busy or briefly unreachable control plane: the first lookup asks again after 429 and 5xx
// gateway answers inside --connect-timeout, and a wait for a pending or resumed sandbox survives
// polls that fail, until --wait runs out. Other failures still end the run at once.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startEcho, startServer, startCli, runCli, listen, randomBytes, echoRoundTrip } from './helpers/index.js';

const ID = 'sbx7retry0lookup1abc';

/**
 * A control plane that plays `script` for GET /sandboxes/*: each step is [status, body] or 'reset'
 * (the connection is cut without an answer); the last step repeats. POST .../resume answers 200.
 */
async function scriptedControlPlane(script) {
  const seen = [];
  const steps = [...script];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'POST') return res.end('{}');
    const step = steps.length > 1 ? steps.shift() : steps[0];
    if (step === 'reset') return req.socket.destroy();
    const [status, body] = step;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  const port = await listen(server);
  return { seen, env: { TENSORLAKE_SANDBOX_API_URL: `http://127.0.0.1:${port}` }, close: () => new Promise((r) => server.close(r)) };
}

const busy = (status) => [status, { error: `busy ${status}` }];

test('the first lookup asks again after 503, 429 and 502, then forwards; -v shows each retry', async () => {
  const echo = await startEcho();
  const tunnels = await startServer();
  const cp = await scriptedControlPlane([busy(503), busy(429), busy(502), [200, { sandbox_id: ID, status: 'running', sandbox_url: tunnels.url }]]);
  try {
    const cli = await startCli(['-v', 'my-db', `:${echo.port}`], { env: cp.env });
    const data = randomBytes(64 * 1024);
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    assert.equal(cp.seen.filter((s) => s === 'GET /sandboxes/my-db').length, 4);
    for (const [status, attempt] of [[503, 2], [429, 3], [502, 4]]) {
      assert.match(cli.stderr(), new RegExp(`failed: HTTP ${status}: busy ${status}; asking again \\(attempt ${attempt}\\)`));
    }
    await new Promise((r) => setTimeout(r, 1200)); // a stop right after traffic counts as interrupted
    assert.equal((await cli.stop()).code, 0);
  } finally {
    await cp.close();
    await tunnels.close();
    await echo.close();
  }
});

test('busy for longer than --connect-timeout: exit 1 with the last answer; a 400 or an unreachable API is not retried', async () => {
  const cp = await scriptedControlPlane([busy(503)]);
  try {
    const started = Date.now();
    const r = await runCli(['--connect-timeout', '1.5', 'my-db', '5432'], { env: cp.env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Looking up sandbox my-db at 127\.0\.0\.1:\d+ failed: HTTP 503: busy 503/);
    assert.ok(cp.seen.length >= 2, `asked again: ${cp.seen.length}`);
    assert.ok(Date.now() - started < 10_000, 'gave up near the connect timeout');
    assert.equal(r.stderr.trim().split('\n').filter((l) => /HTTP 503/.test(l)).length, 1, 'one line, no retry noise without -v');
  } finally {
    await cp.close();
  }
  const bad = await scriptedControlPlane([[400, { error: 'bad request' }]]);
  try {
    const r = await runCli(['my-db', '5432'], { env: bad.env });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(bad.seen.length, 1, 'a 400 is asked once');
  } finally {
    await bad.close();
  }
});

test('waiting for a pending sandbox survives a 503 and a cut connection between polls', async () => {
  const echo = await startEcho();
  const tunnels = await startServer();
  const pending = [200, { sandbox_id: ID, status: 'pending', sandbox_url: tunnels.url }];
  const cp = await scriptedControlPlane([pending, busy(503), 'reset', pending, [200, { sandbox_id: ID, status: 'running', sandbox_url: tunnels.url }]]);
  try {
    const cli = await startCli(['-v', '--wait', '30', 'my-db', `:${echo.port}`], { env: cp.env });
    const err = cli.stderr();
    assert.match(err, /HTTP 503: busy 503; asking again while waiting/);
    assert.equal(err.split('\n').filter((l) => /asking again while waiting/.test(l)).length, 1, `said once per streak:\n${err}`);
    assert.equal(err.split('\n').filter((l) => /is pending; waiting for it to run/.test(l)).length, 2, `the wait is said again after the streak:\n${err}`);
    const data = randomBytes(1000);
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await cli.stop()).code, 0);
  } finally {
    await cp.close();
    await tunnels.close();
    await echo.close();
  }
});

test('a resume that meets a busy control plane is asked again; polls failing past --wait end with the last failure', async () => {
  const echo = await startEcho();
  const tunnels = await startServer();
  const suspended = [200, { sandbox_id: ID, status: 'suspended', sandbox_url: tunnels.url }];
  // The resume POST itself answers 200 here; the polls around it fail, then the sandbox runs.
  const cp = await scriptedControlPlane([suspended, busy(504), [200, { sandbox_id: ID, status: 'running', sandbox_url: tunnels.url }]]);
  try {
    const cli = await startCli(['--resume', 'my-db', `:${echo.port}`], { env: cp.env });
    assert.ok(cp.seen.includes(`POST /sandboxes/${ID}/resume`), cp.seen.join('\n'));
    const data = randomBytes(1000);
    assert.deepEqual(await echoRoundTrip(cli.port, data), data);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await cli.stop()).code, 0);
  } finally {
    await cp.close();
  }
  const stuck = await scriptedControlPlane([[200, { sandbox_id: ID, status: 'pending', sandbox_url: tunnels.url }], busy(503)]);
  try {
    const r = await runCli(['--wait', '2', 'my-db', '5432'], { env: stuck.env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /failed: HTTP 503: busy 503/);
    assert.ok(stuck.seen.length >= 2, 'polled');
  } finally {
    await stuck.close();
    await tunnels.close();
    await echo.close();
  }
});
