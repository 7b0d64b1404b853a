// The lookup as a library: resolveSandbox() and its status callback, a cached resolver whose answer
// opens tunnels without another lookup, the lookup base derived from the API URL, the reference
// server's control plane (PAT scope, resume, its --sandboxes file) and --stdio after a lookup.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSandboxResolver, deriveLookupBase, isLocalApiUrl, openTunnel, resolveSandbox, lookupBaseFor } from '../dist/index.js';
import { CANARY_KEY, SERVER_CLI, cliEnv, echoRoundTrip, randomBytes, runCli, startEcho, startServer } from './helpers/index.js';

const ID = 'sbxlib0000000000000001';
const credentials = { apiKey: CANARY_KEY };

test('the lookup base: api.X becomes sandbox.X with the scheme kept and the port dropped, as upstream; anything else the default; localhost has none', () => {
  assert.equal(deriveLookupBase('https://api.tensorlake.ai'), 'https://sandbox.tensorlake.ai');
  assert.equal(deriveLookupBase('https://api.eu-west-1.tensorlake.dev:8443/v2'), 'https://sandbox.eu-west-1.tensorlake.dev');
  assert.equal(deriveLookupBase('http://api.internal.example'), 'http://sandbox.internal.example');
  assert.equal(deriveLookupBase('https://tensorlake.example.com'), 'https://sandbox.tensorlake.ai');
  assert.equal(deriveLookupBase('not a url'), 'https://sandbox.tensorlake.ai');
  assert.equal(isLocalApiUrl('http://localhost:8900'), true);
  assert.equal(isLocalApiUrl('http://127.0.0.1:8900'), true);
  assert.equal(isLocalApiUrl('https://api.tensorlake.ai'), false);
  assert.equal(lookupBaseFor({ apiUrl: 'http://localhost:8900' }), undefined);
  assert.equal(lookupBaseFor({ proxyUrl: 'https://proxy.example' }), undefined);
  assert.equal(lookupBaseFor({ proxyUrl: 'https://proxy.example', sandboxApiUrl: 'https://cp.example/base/' }), 'https://cp.example/base');
  assert.equal(lookupBaseFor({}), 'https://sandbox.tensorlake.ai');
  // The token never goes in clear text to another machine.
  assert.throws(() => lookupBaseFor({ sandboxApiUrl: 'http://cp.example' }), /clear text/);
  assert.throws(() => lookupBaseFor({ apiUrl: 'http://api.example' }), /clear text/);
});

test('resolveSandbox reports progress, and a cached resolver feeds openTunnel without another lookup', async () => {
  const echo = await startEcho();
  const server = await startServer({ sandboxes: [{ id: ID, name: 'lib-db', status: 'pending', routing_hint: 'r1', transitions: [{ after_ms: 300, status: 'running' }] }] });
  const gets = [];
  server.on('control', (req) => gets.push(req.url));
  try {
    const events = [];
    const resolved = await resolveSandbox({ sandbox: 'LIB-DB', credentials, sandboxApiUrl: server.url, pollMs: 100, onStatus: (e) => events.push(e) });
    assert.deepEqual(
      { ...resolved },
      { requested: 'LIB-DB', id: ID, name: 'lib-db', status: 'running', proxyUrl: server.url, proxyUrlSource: 'record', routingHint: 'r1', lookedUp: true, lookupBase: server.url },
    );
    assert.deepEqual([...new Set(events.map((e) => e.phase))], ['lookup', 'waiting']);
    // The identifier as typed: the control plane judges case.
    assert.ok(events.every((e) => e.sandbox === 'LIB-DB' && typeof e.message === 'string'));

    const resolver = createSandboxResolver({ credentials, sandboxApiUrl: server.url });
    const before = gets.length;
    const [a, b] = await Promise.all([resolver.resolve('lib-db'), resolver.resolve('Lib-DB')]);
    assert.equal(a, b);
    assert.equal(gets.length - before, 1, 'one lookup for both');
    const tunnel = await openTunnel({ sandbox: 'lib-db', ports: `:${echo.port}`, credentials, resolvedSandbox: a });
    try {
      const data = randomBytes(10_000);
      assert.deepEqual(await echoRoundTrip(tunnel.addresses[0].port, data), data);
    } finally {
      await tunnel.close();
    }
    assert.equal(gets.length - before, 1, 'no lookup at open');
    await assert.rejects(resolver.resolve('nope'), { code: 'TL_ERR_SANDBOX_NOT_FOUND' });
  } finally {
    await server.close();
    await echo.close();
  }
});

test('the reference control plane: a PAT needs the scope headers and sees only its project; resume; 405', async () => {
  const pat = 'tl_pat_reference0123456789';
  const server = await startServer({ pat, sandboxes: [{ id: ID, name: 'scoped', status: 'suspended', organization: 'org1', project: 'p1' }] });
  const call = (url, headers = {}, method = 'GET') => fetch(`${server.url}${url}`, { method, headers: { authorization: `Bearer ${pat}`, ...headers } });
  try {
    assert.equal((await call('/sandboxes/scoped')).status, 403);
    assert.equal((await call('/sandboxes/scoped', { 'x-forwarded-organization-id': 'org1', 'x-forwarded-project-id': 'other' })).status, 404);
    const ok = await call('/sandboxes/scoped', { 'x-forwarded-organization-id': 'org1', 'x-forwarded-project-id': 'p1' });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).status, 'suspended');
    assert.equal((await fetch(`${server.url}/sandboxes/scoped`, { headers: { authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await fetch(`${server.url}/sandboxes/scoped`, { method: 'DELETE', headers: { authorization: `Bearer ${CANARY_KEY}` } })).status, 405);
    const resumed = await fetch(`${server.url}/sandboxes/${ID}/resume`, { method: 'POST', headers: { authorization: `Bearer ${CANARY_KEY}` } });
    assert.equal((await resumed.json()).status, 'running');
    // The client side: a PAT with its scope resolves the sandbox.
    const r = await resolveSandbox({ sandbox: 'scoped', credentials: { pat, organizationId: 'org1', projectId: 'p1' }, sandboxApiUrl: server.url });
    assert.equal(r.id, ID);
  } finally {
    await server.close();
  }
});

test('tl-tunnel-server --sandboxes FILE, then --stdio through a looked-up sandbox', async (t) => {
  const echo = await startEcho();
  const dir = await mkdtemp(path.join(tmpdir(), 'tl-sbx-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'sandboxes.json');
  await writeFile(file, JSON.stringify([{ id: ID, name: 'from-file', status: 'running' }]));
  const server = spawn(process.execPath, [SERVER_CLI, '--json', '--port', '0', '--token', CANARY_KEY, '--sandboxes', file], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const [line] = await once(server.stdout.setEncoding('utf8'), 'data');
    const { url } = JSON.parse(line.split('\n')[0]);
    const r = await runCli(['--stdio', 'from-file', String(echo.port)], { env: { TENSORLAKE_SANDBOX_API_URL: url }, input: 'hello through the lookup' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello through the lookup');
    const bad = await runCli(['--sandboxes', path.join(dir, 'missing.json'), '--port', '0'], { bin: SERVER_CLI, timeoutMs: 10_000 });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Cannot read the sandboxes file .*missing\.json \(ENOENT\)/);
  } finally {
    server.kill('SIGTERM');
    await echo.close();
  }
});
