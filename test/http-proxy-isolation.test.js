// Every plain-HTTP request through the -D proxy goes where its own URL says, and nowhere else:
// against a hostile service that ignores `Connection: close` and keeps reading, a keep-alive or
// pipelined second request (for another sandbox, with its cookie) never enters the first request's
// tunnel; proxy credentials and hop-by-hop headers never leave; real keep-alive clients (curl with
// two URLs, Chromium loading one page from two sandboxes) still get every answer right.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { eventually, listen, startCli, startServer, sandboxOf } from './helpers/index.js';
import { needsTools, requireBinary } from './helpers/services.js';

let server;
let cli;
let hostile;
let hostilePort;
/** What each connection to the hostile service received, in order of arrival. */
const received = [];
const sandboxes = [];

before(async () => {
  server = await startServer();
  server.on('request', (req) => sandboxes.push(sandboxOf(req.headers)));
  // Answers the first request head on each connection, keeps the connection open whatever it was
  // asked, and records every byte it ever gets.
  hostile = net.createServer((socket) => {
    const record = { bytes: '' };
    received.push(record);
    let answered = false;
    socket.on('error', () => {});
    socket.on('data', (d) => {
      record.bytes += d.toString('latin1');
      if (!answered && record.bytes.includes('\r\n\r\n')) {
        answered = true;
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\nok');
      }
    });
  });
  hostilePort = await listen(hostile);
  cli = await startCli(['--proxy-url', server.url, '-D', '0']);
});

after(async () => {
  const r = await cli?.stop();
  hostile?.close();
  await server?.close();
  if (r) assert.equal(r.code, 0, r.stderr);
});

/** Opens a connection to the proxy, writes each part (waiting for an answer after those marked), returns what came back. */
async function talk(parts) {
  const socket = net.connect(cli.port, '127.0.0.1');
  await once(socket, 'connect');
  let answer = '';
  let closed = false;
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  socket.setEncoding('latin1').on('data', (d) => (answer += d));
  const answered = () => closed || answer.includes('\r\n\r\nok');
  for (const part of parts) {
    socket.write(part.text);
    if (part.waitAnswer) await eventually(answered, { timeoutMs: 10_000, what: 'the first answer' });
  }
  // The hostile service never closes: the answer (or a cut) is the end of the exchange. Whatever
  // would leak has then had a moment to reach the service.
  await eventually(answered, { timeoutMs: 10_000, what: 'the answer' });
  await new Promise((r) => setTimeout(r, 300));
  socket.destroy();
  return answer;
}

const SECOND = (port) => `GET http://sbx-b:${port}/second HTTP/1.1\r\nHost: sbx-b:${port}\r\nCookie: session=secret-of-b\r\nProxy-Authorization: Basic c2VjcmV0OmI=\r\n\r\n`;

const FIRSTS = {
  'no body': (port) => `GET http://sbx-a:${port}/first HTTP/1.1\r\nHost: x\r\nCookie: session=of-a\r\n\r\n`,
  'a Content-Length body': (port) => `POST http://sbx-a:${port}/first HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello`,
  'a chunked body': (port) => `POST http://sbx-a:${port}/first HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n`,
};

for (const [body, first] of Object.entries(FIRSTS)) {
  for (const pipelined of [true, false]) {
    test(`a second request never enters the first one's tunnel: first with ${body}, second ${pipelined ? 'pipelined in the same write' : 'sent after the answer'}`, async () => {
      received.length = 0;
      sandboxes.length = 0;
      const parts = pipelined ? [{ text: first(hostilePort) + SECOND(hostilePort) }] : [{ text: first(hostilePort), waitAnswer: true }, { text: SECOND(hostilePort) }];
      const answer = await talk(parts);
      assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(answer, /\r\nConnection: close\r\n/i, 'the client is told not to reuse the connection');
      assert.doesNotMatch(answer, /keep-alive/i);
      assert.equal(received.length, 1, 'one connection reached the service');
      const got = received[0].bytes;
      assert.match(got, /^(GET|POST) \/first HTTP\/1\.1\r\n/);
      assert.doesNotMatch(got, /second|secret-of-b|Proxy-Authorization/i, `sandbox a's service saw: ${JSON.stringify(got)}`);
      assert.deepEqual(sandboxes, ['sbx-a']);
      if (body === 'a chunked body') assert.ok(got.endsWith('5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n'), JSON.stringify(got));
      if (body === 'a Content-Length body') assert.ok(got.endsWith('\r\n\r\nhello'), JSON.stringify(got));
    });
  }
}

test('Proxy-Authorization and hop-by-hop headers are never forwarded', async () => {
  received.length = 0;
  await talk([
    {
      text: `GET http://sbx-a:${hostilePort}/h HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n`,
    },
  ]);
  const head = received[0].bytes;
  for (const name of ['Proxy-Authorization', 'Proxy-Connection', 'X-Private', 'Keep-Alive', 'TE:', 'Trailer', 'Upgrade']) assert.ok(!head.includes(name), `${name} reached the service: ${head}`);
  assert.match(head, /\r\nX-Kept: yes\r\n/);
  assert.match(head, /\r\nConnection: close\r\n/);
});

test('a malformed chunked body cuts the connection before anything past it is sent', async () => {
  received.length = 0;
  await talk([{ text: `POST http://sbx-a:${hostilePort}/bad HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET http://sbx-b:${hostilePort}/second HTTP/1.1\r\n\r\n` }]);
  for (const r of received) assert.doesNotMatch(r.bytes, /second/);
});

const toolSkip = needsTools('curl');
const chromiumSkip = needsTools('chromium');
const curl = toolSkip ? 'curl' : requireBinary('curl', 'curl');

test('curl with two URLs for two sandboxes over one proxy connection gets both answers, each from its own sandbox', { skip: toolSkip }, async () => {
  const requests = [];
  const web = http.createServer((req, res) => {
    requests.push({ host: req.headers.host, url: req.url, socket: req.socket });
    res.end(`answer from ${req.headers.host}${req.url}\n`);
  });
  const port = await listen(web);
  sandboxes.length = 0;
  try {
    const out = await new Promise((resolve, reject) =>
      execFile(curl, ['-sS', '--max-time', '15', '-x', `http://127.0.0.1:${cli.port}`, `http://sbx-one:${port}/1`, `http://sbx-two:${port}/2`], { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
    );
    assert.equal(out, `answer from sbx-one:${port}/1\nanswer from sbx-two:${port}/2\n`);
    assert.deepEqual(sandboxes, ['sbx-one', 'sbx-two']);
    assert.notEqual(requests[0].socket, requests[1].socket, 'each request came through its own tunnel');
  } finally {
    web.close();
  }
});

test('Chromium through the HTTP proxy loads one page whose resources come from two sandboxes', { skip: chromiumSkip, timeout: 40_000 }, async () => {
  const chromium = requireBinary('chromium', 'chromium');
  const bySocket = new Map();
  const web = http.createServer((req, res) => {
    const hosts = bySocket.get(req.socket) ?? new Set();
    hosts.add(req.headers.host?.split(':')[0]);
    bySocket.set(req.socket, hosts);
    const [host] = (req.headers.host ?? '').split(':');
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><html><body><p id="status">loading</p>
<script src="/a.js"></script><script src="http://page-b:${port}/b.js"></script><script src="/a2.js"></script><script src="http://page-b:${port}/b2.js"></script>
<script>document.getElementById('status').textContent = [window.a, window.b, window.a2, window.b2].join(' ');</script></body></html>`);
    } else {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(`window.${req.url.slice(1, -3)} = ${JSON.stringify(`${req.url.slice(1, -3)}@${host}`)};`);
    }
  });
  const port = await listen(web);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-chromium-'));
  sandboxes.length = 0;
  try {
    const dom = await new Promise((resolve, reject) =>
      execFile(
        chromium,
        ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${dir}`, `--proxy-server=http://127.0.0.1:${cli.port}`, '--dump-dom', `http://page-a:${port}/`],
        { timeout: 30_000, maxBuffer: 8 * 1024 * 1024 },
        (err, out, errOut) => (err ? reject(new Error(`chromium failed: ${err.message}\n${errOut.slice(-2000)}`)) : resolve(out)),
      ),
    );
    assert.match(dom, /<p id="status">a@page-a b@page-b a2@page-a b2@page-b<\/p>/, dom);
    for (const hosts of bySocket.values()) assert.equal(hosts.size, 1, `one connection to the service carried requests for ${[...hosts]}`);
    assert.ok(sandboxes.includes('page-a') && sandboxes.includes('page-b'), `upgrades: ${sandboxes}`);
  } finally {
    web.close();
    web.closeAllConnections();
    await rm(dir, { recursive: true, force: true });
  }
});

test('Chrome DevTools refusing the Host gets a one-line hint to use <sandbox>.localhost', async () => {
  const devtools = http.createServer((req, res) => res.writeHead(500).end('Host header is specified and is not an IP address or localhost.'));
  const port = await listen(devtools);
  try {
    await talk([{ text: `GET http://my-browser:${port}/json/version HTTP/1.1\r\nHost: my-browser:${port}\r\n\r\n` }]);
    const warning = await cli.waitFor((ev) => ev.find((e) => e.event === 'warning' && e.code === 'TL_WARN_DEVTOOLS_HOST'), 10_000, 'the DevTools hint');
    assert.match(warning.message, new RegExp(`use http://my-browser\\.localhost:${port}/`));
  } finally {
    devtools.close();
  }
});
