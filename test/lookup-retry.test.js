// A busy or briefly unreachable control plane: the first lookup asks again after 429 and 5xx
// gateway answers inside --connect-timeout, and a wait for a pending or resumed sandbox survives
// polls that fail, until --wait runs out. Other failures still end the run at once.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startEcho, startServer, startCli, runCli, listen, randomBytes, echoRoundTrip } from './helpers/index.js';

const ID = 'sbx7retry0lookup1abc';

/**
 * A control plane that plays `script` for GET /sandboxes/* and `resumes` for POST .../resume: each
 * step is [status, body] or 'reset' (the connection is cut without an answer); the last one repeats.
 */
async function scriptedControlPlane(script, resumes = [[200, {}]]) {
  const seen = [];
  const steps = { GET: [...script], POST: [...resumes] };
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const list = steps[req.method];
    const step = list.length > 1 ? list.shift() : list[0];
    if (step === 'reset') return req.socket.destroy();
    const [status, body] = step;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  const port = await listen(server);
  return { seen, env: { TENSORLAKE_SANDBOX_API_URL: `http://127.0.0.1:${port}` }, close: () => new Promise((r) => server.close(r)) };
}

/** Runs `fn` with a scripted control plane, closed afterwards. */
async function withControlPlane(script, resumes, fn) {
  const cp = await scriptedControlPlane(script, resumes);
  try {
    return await fn(cp);
  } finally {
    await cp.close();
  }
}

const busy = (status) => [status, { error: `busy ${status}` }];

/** An echo service and a reference proxy for the records to name, for the length of `fn`. */
async function withSandbox(fn) {
  const echo = await startEcho();
  const tunnels = await startServer();
  try {
    return await fn({ echo, tunnels, record: (status) => [200, { sandbox_id: ID, status, sandbox_url: tunnels.url }] });
  } finally {
    await tunnels.close();
    await echo.close();
  }
}

/** Data goes through the forwarder, which then stops cleanly (the exchange is complete: nothing is cut). */
async function forwardsThenStops(cli, size = 1000) {
  const data = randomBytes(size);
  assert.deepEqual(await echoRoundTrip(cli.port, data), data);
  assert.equal((await cli.stop()).code, 0);
}

test('the first lookup asks again after 503, 429 and 502, then forwards; -v shows each retry', () =>
  withSandbox(({ echo, record }) =>
    withControlPlane([busy(503), busy(429), busy(502), record('running')], undefined, async (cp) => {
      const cli = await startCli(['-v', 'my-db', `:${echo.port}`], { env: cp.env });
      assert.equal(cp.seen.filter((s) => s === 'GET /sandboxes/my-db').length, 4);
      for (const [status, attempt] of [[503, 2], [429, 3], [502, 4]]) {
        assert.match(cli.stderr(), new RegExp(`failed: HTTP ${status}: busy ${status}; asking again \\(attempt ${attempt}\\)`));
      }
      await forwardsThenStops(cli, 64 * 1024);
    }),
  ));

test('busy for longer than --connect-timeout: exit 1 with the last answer, one line; a 400 is not retried', async () => {
  await withControlPlane([busy(503)], undefined, async (cp) => {
    const started = Date.now();
    const r = await runCli(['--connect-timeout', '1.5', 'my-db', '5432'], { env: cp.env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Looking up sandbox my-db at 127\.0\.0\.1:\d+ failed: HTTP 503: busy 503/);
    assert.ok(cp.seen.length >= 2, `asked again: ${cp.seen.length}`);
    assert.ok(Date.now() - started < 10_000, 'gave up near the connect timeout');
    assert.equal(r.stderr.trim().split('\n').filter((l) => /HTTP 503/.test(l)).length, 1, 'one line, no retry noise without -v');
  });
  await withControlPlane([[400, { error: 'bad request' }]], undefined, async (cp) => {
    const r = await runCli(['my-db', '5432'], { env: cp.env });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(cp.seen.length, 1, 'a 400 is asked once');
  });
});

test('waiting for a pending sandbox survives a 503 and a cut connection between polls', () =>
  withSandbox(({ echo, record }) =>
    withControlPlane([record('pending'), busy(503), 'reset', record('pending'), record('running')], undefined, async (cp) => {
      const cli = await startCli(['-v', '--wait', '30', 'my-db', `:${echo.port}`], { env: cp.env });
      const lines = cli.stderr().split('\n');
      assert.ok(lines.some((l) => /HTTP 503: busy 503; asking again while waiting/.test(l)), cli.stderr());
      assert.equal(lines.filter((l) => /asking again while waiting/.test(l)).length, 1, `said once per streak:\n${cli.stderr()}`);
      assert.equal(lines.filter((l) => /is pending; waiting for it to run/.test(l)).length, 2, `the wait is said again after the streak:\n${cli.stderr()}`);
      await forwardsThenStops(cli);
    }),
  ));

test('a resume request that meets a busy control plane is asked again; polls failing past --wait end with the last failure', () =>
  withSandbox(async ({ echo, record }) => {
    await withControlPlane([record('suspended'), record('suspended'), record('running')], [busy(503), [200, {}]], async (cp) => {
      const cli = await startCli(['--resume', 'my-db', `:${echo.port}`], { env: cp.env });
      assert.equal(cp.seen.filter((s) => s === `POST /sandboxes/${ID}/resume`).length, 2, cp.seen.join('\n'));
      assert.equal(cli.stderr().split('\n').filter((l) => /Resuming sandbox my-db/.test(l)).length, 1, cli.stderr());
      await forwardsThenStops(cli);
    });
    await withControlPlane([record('pending'), busy(503)], undefined, async (cp) => {
      const r = await runCli(['--wait', '2', 'my-db', '5432'], { env: cp.env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /failed: HTTP 503: busy 503/);
      assert.ok(cp.seen.length >= 2, 'polled');
    });
  }));
