// The same answers as Tensorlake's own tools: every status upstream knows (timeout is a failure),
// the failure detail upstream shows (error_details before termination_reason, ImageNotFound names
// the image), an unknown status named while waiting, and polling that survives a sandbox briefly
// missing, until --wait runs out.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { listen, runCli, startCli, startEcho, startServer, jsonEvents } from './helpers/index.js';

/** The CLI against the reference server's control plane, which also serves the tunnels. */
async function withControlPlane(sandboxes, fn) {
  const server = await startServer({ sandboxes });
  try {
    return await fn(server, { TENSORLAKE_SANDBOX_API_URL: server.url });
  } finally {
    await server.close();
  }
}

test('a sandbox that timed out fails at once like a terminated one, with its error details', async () => {
  await withControlPlane([{ id: 'sbx-late', status: 'timeout', error_details: { message: 'did not start within 300 s' }, termination_reason: 'Timeout' }], async (server, env) => {
    const started = Date.now();
    const r = await runCli(['--json', '--proxy-url', server.url, 'sbx-late', ':5432'], { env });
    assert.equal(r.code, 4, r.stderr);
    assert.ok(Date.now() - started < 8000, 'no wait for a status that never changes');
    assert.match(r.stderr, /^error Sandbox sbx-late has timed out \(did not start within 300 s\); it cannot be resumed$/m);
    const error = jsonEvents(r.stdout).find((e) => e.event === 'error' && e.fatal);
    assert.equal(error.code, 'TL_ERR_SANDBOX_NOT_RUNNING');
    assert.match(error.message, /did not start within 300 s/);
  });
});

test('failure detail as upstream: error_details before termination_reason; ImageNotFound names the image; peer text is cleaned', async () => {
  await withControlPlane(
    [
      { id: 'sbx-img', status: 'terminated', termination_reason: 'ImageNotFound', image: 'ghcr.io/acme/app:9' },
      { id: 'sbx-det', status: 'terminated', termination_reason: 'OOMKilled', error_details: 'out of memory\u001b[2J at 4 GiB' },
      { id: 'sbx-why', status: 'terminated', termination_reason: 'UserRequested' },
    ],
    async (server, env) => {
      const line = async (id) => (await runCli(['--proxy-url', server.url, id, ':5432'], { env })).stderr.split('\n').find((l) => l.startsWith('error '));
      assert.equal(await line('sbx-img'), 'error Sandbox sbx-img is terminated (image not found: ghcr.io/acme/app:9); it cannot be resumed');
      assert.equal(await line('sbx-det'), 'error Sandbox sbx-det is terminated (out of memory [2J at 4 GiB); it cannot be resumed');
      assert.equal(await line('sbx-why'), 'error Sandbox sbx-why is terminated (UserRequested); it cannot be resumed');
    },
  );
});

test('an unknown status is waited on, and the line says it is one tl-tunnel does not know', async () => {
  const echo = await startEcho();
  try {
    await withControlPlane([{ id: 'sbx-new', status: 'hibernating', transitions: [{ after_ms: 1500, status: 'running' }] }], async (server, env) => {
      const cli = await startCli(['--proxy-url', server.url, 'sbx-new', `:${echo.port}`], { env });
      assert.match(cli.stderr(), /Sandbox sbx-new is hibernating \(a status tl-tunnel does not know\); waiting for it to run/);
      const r = await cli.stop();
      assert.equal(r.code, 0, r.stderr);
    });
  } finally {
    await echo.close();
  }
});

test('while waiting, a sandbox briefly missing (404) is asked again until it runs; after --wait, the last answer is the error', async () => {
  const echo = await startEcho();
  const server = await startServer();
  // A control plane whose sandbox is pending, then missing for a moment, then running.
  const answers = ['pending', 404, 404, 'running'];
  let asked = 0;
  const plane = http.createServer((req, res) => {
    const answer = answers[Math.min(asked++, answers.length - 1)];
    if (answer === 404) return res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"sandbox not found"}');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sandbox_id: 'sbx-flaky', status: answer, sandbox_url: server.url }));
  });
  const planeUrl = `http://127.0.0.1:${await listen(plane)}`;
  try {
    const cli = await startCli(['sbx-flaky', `:${echo.port}`], { env: { TENSORLAKE_SANDBOX_API_URL: planeUrl } });
    assert.ok(asked >= 4, `asked ${asked} times`);
    assert.equal((await cli.stop()).code, 0);
    // Missing for good: polling goes on until the wait runs out, then the 404 is the answer.
    answers.splice(0, answers.length, 'pending', 404);
    asked = 0;
    const started = Date.now();
    const r = await runCli(['--wait', '3', 'sbx-flaky', `:${echo.port}`], { env: { TENSORLAKE_SANDBOX_API_URL: planeUrl } });
    assert.equal(r.code, 4, r.stderr);
    // Polls once a second; the last one that fits in the 3 s wait is about 2 s in.
    assert.ok(Date.now() - started >= 1800 && asked >= 3, `kept polling until --wait ran out (${asked} requests)`);
    assert.match(r.stderr, /^error No sandbox named sbx-flaky in this project \(404 /m);
  } finally {
    plane.close();
    await server.close();
    await echo.close();
  }
});

test('identifiers go to the control plane as typed; only what would move the request is refused', async () => {
  const echo = await startEcho();
  try {
    await withControlPlane([{ id: 'sbx-typed', name: 'My_Box.1' }], async (server, env) => {
      const lookups = [];
      server.on('control', (req) => lookups.push(req.url));
      const cli = await startCli(['--proxy-url', server.url, 'My_Box.1', `:${echo.port}`], { env });
      assert.equal((await cli.stop()).code, 0);
      assert.deepEqual(lookups, ['/sandboxes/My_Box.1'], 'not lower-cased, not refused: the control plane judges');
      const unknown = await runCli(['--proxy-url', server.url, 'No_Such.Box', ':5432'], { env });
      assert.equal(unknown.code, 4, unknown.stderr);
      for (const bad of ['a/b', 'a?b', 'a#b', '%2e%2e', 'two words', 'x'.repeat(129)]) {
        const r = await runCli(['--proxy-url', server.url, bad, ':5432'], { env });
        assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
        assert.match(r.stderr, /^error Invalid sandbox .*without spaces, \/, \?, #, % or \\/m);
      }
    });
  } finally {
    await echo.close();
  }
});

test('a record without an id: the identifier as typed names the sandbox, as upstream', async () => {
  const echo = await startEcho();
  const server = await startServer();
  const seen = [];
  server.on('request', (req) => seen.push(req.headers.host));
  const plane = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'running', sandbox_url: server.url })));
  const planeUrl = `http://127.0.0.1:${await listen(plane)}`;
  try {
    const cli = await startCli(['my-named-box', `:${echo.port}`], { env: { TENSORLAKE_SANDBOX_API_URL: planeUrl } });
    assert.equal((await cli.stop()).code, 0);
    assert.ok(seen.length > 0 && seen.every((h) => h === 'my-named-box.local'), seen.join(' '));
  } finally {
    plane.close();
    await server.close();
    await echo.close();
  }
});

test('local development as upstream: no lookup, Host <id>.local instead of the id header, and --resume through the namespaced lifecycle API', async () => {
  const echo = await startEcho();
  const server = await startServer({ sandboxes: [{ id: 'sbx-sleepy', status: 'suspended', resume_ms: 300 }] });
  const control = [];
  const upgrades = [];
  server.on('control', (req) => control.push(`${req.method} ${req.url}`));
  server.on('request', (req) => upgrades.push(req.headers));
  // A local stack: the API URL on 127.0.0.1, its proxy named by TENSORLAKE_SANDBOX_PROXY_URL.
  const env = { TENSORLAKE_API_URL: server.url, TENSORLAKE_SANDBOX_PROXY_URL: server.url, INDEXIFY_NAMESPACE: 'dev' };
  try {
    const resumed = await startCli(['--resume', 'sbx-sleepy', `:${echo.port}`], { env });
    assert.equal((await resumed.stop()).code, 0);
    assert.deepEqual(control.slice(0, 2), ['GET /v1/namespaces/dev/sandboxes/sbx-sleepy', 'POST /v1/namespaces/dev/sandboxes/sbx-sleepy/resume']);
    assert.ok(control.slice(2).every((c) => c === 'GET /v1/namespaces/dev/sandboxes/sbx-sleepy'), control.join('\n'));
    const last = upgrades.at(-1);
    assert.equal(last.host, 'sbx-sleepy.local');
    assert.equal(last['x-tensorlake-sandbox-id'], undefined, 'Host instead of the id header');
    // Without --resume: no lifecycle call at all.
    control.length = 0;
    const plain = await startCli(['--namespace', 'other', 'sbx-sleepy', `:${echo.port}`], { env });
    assert.equal((await plain.stop()).code, 0);
    assert.deepEqual(control, []);
  } finally {
    await server.close();
    await echo.close();
  }
});
