// The reference server survives any request: a malformed path, method or header costs that request
// (a 4xx with the JSON error body), never the process and the tunnels it carries. Runs the real
// tl-tunnel-server process, with its control plane (--sandboxes and --pat), and throws random
// requests at both the control-plane and the tunnel routes.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import WebSocket from 'ws';
import { CANARY_KEY, startEcho } from './helpers/index.js';
import { killChild, startServerProcess } from './helpers/faults.js';

const PAT = 'tl_pat_anyrequest0123456789';
const dir = mkdtempSync(path.join(tmpdir(), 'tl-any-request-'));
const sandboxesFile = path.join(dir, 'sandboxes.json');
writeFileSync(sandboxesFile, JSON.stringify([{ id: 'sbx1', name: 'db' }]));

let server;
let echo;
before(async () => {
  echo = await startEcho();
  server = await startServerProcess(0, ['--sandboxes', sandboxesFile, '--pat', PAT]);
});
after(async () => {
  if (server) await killChild(server.child);
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Sends `text` and resolves with the answer's status line and body once the server closes, answers
 * in full, or 3 s pass (a request the server is still waiting on is not a crash).
 */
function send(text) {
  return new Promise((resolve) => {
    const socket = net.connect(server.port, '127.0.0.1');
    let data = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const [head, body = ''] = data.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), body });
    };
    const timer = setTimeout(done, 3000);
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      data += d;
      const length = /content-length: (\d+)/i.exec(data)?.[1];
      const end = data.indexOf('\r\n\r\n');
      if (end >= 0 && length !== undefined && data.length >= end + 4 + Number(length)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.end(text);
  });
}

/** Whether the server still answers a lookup and opens a tunnel that echoes. */
async function stillServes() {
  assert.equal(server.child.exitCode, null, `tl-tunnel-server exited:\n${server.stderr()}`);
  const lookup = await send(`GET /sandboxes/db HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CANARY_KEY}\r\nConnection: close\r\n\r\n`);
  assert.equal(lookup.status, 200, lookup.body);
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/v1/tunnels/tcp?port=${echo.port}`, { headers: { authorization: `Bearer ${CANARY_KEY}`, 'x-tensorlake-sandbox-id': 'sbx1' } });
  const echoed = await new Promise((resolve, reject) => {
    ws.on('open', () => ws.send(Buffer.from('ping')));
    ws.on('message', (m) => resolve(m.toString()));
    ws.on('error', reject);
  });
  ws.close();
  assert.equal(echoed, 'ping');
}

test('a path that is not valid percent-encoding gets 400 with a JSON error, and the server goes on', async () => {
  for (const auth of ['', `Authorization: Bearer ${CANARY_KEY}\r\n`, `Authorization: Bearer ${PAT}\r\n`]) {
    for (const target of ['/sandboxes/%ZZ', '/sandboxes/%C0', '/sandboxes/%E2%82/resume', '/sandboxes/%']) {
      const answer = await send(`GET ${target} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
      assert.equal(answer.status, 400, `${target}: ${answer.body}`);
      const json = JSON.parse(answer.body);
      assert.equal(typeof json.error, 'string');
      assert.equal(json.code, 'BAD_REQUEST');
    }
  }
  await stillServes();
});

// Pieces that have broken servers: bad escapes, dot segments, absolute forms, NULs, long runs.
const pathPiece = fc.constantFrom('/', '/sandboxes/', '/sandboxes', '/api/v1/tunnels/tcp', '?port=', '%', '%ZZ', '%C0%AF', '%00', '%2e%2e', '..', '//', '#', '?', 'db', 'sbx1', '/resume', '/suspend', 'http://x/', '*', '\u00e9', '\ud83d\ude00', '9'.repeat(30), '&port=1');
// Mostly well-formed requests on the two routes (so they reach the handlers, past Node's parser),
// with some that are malformed anywhere.
const route = fc.constantFrom('/sandboxes/', '/api/v1/tunnels/tcp', '/', '');
const requestPath = fc
  .tuple(route, fc.array(fc.oneof({ weight: 4, arbitrary: pathPiece }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }), { maxLength: 5 }))
  .map(([start, pieces]) => start + pieces.join(''));
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH') },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('CONNECT', 'TRACE', 'get', 'G E T', ''), fc.string({ maxLength: 8 })) },
);
const headerName = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('Authorization', 'Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'X-Tensorlake-Sandbox-Id', 'X-Forwarded-Organization-Id', 'X-Forwarded-Project-Id', 'Content-Length', 'Transfer-Encoding') }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) });
const headerValue = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(`Bearer ${CANARY_KEY}`, `Bearer ${PAT}`, 'websocket', 'Upgrade', 'dGhlIHNhbXBsZSBub25jZQ==', '13', 'sbx1', 'db', '%ZZ', '0', '-1', 'chunked', '99999999999999999999', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 24 }) },
);
const request = fc.record({
  method,
  path: requestPath,
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }),
  body: fc.string({ maxLength: 16 }),
  host: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

test('random methods, paths and headers on both routes never stop the server', async () => {
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const head = r.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
      // Node refuses an HTTP/1.1 request without Host before any handler sees it: most carry one.
      await send(`${r.method} ${r.path} HTTP/1.1\r\n${r.host ? 'Host: x\r\n' : ''}${head}\r\n${r.body}`);
      assert.equal(server.child.exitCode, null, `tl-tunnel-server exited after ${JSON.stringify(r)}:\n${server.stderr()}`);
    }),
    { numRuns: 400 },
  );
  await stillServes();
});
