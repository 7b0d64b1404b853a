// A real browser through proxy mode: headless Chromium set to use the -D port (SOCKS5, then as an
// HTTP proxy) loads a page from a server "inside" sandbox my-app, and the page's WebSocket talks
// back to that server. The page writes the WebSocket's answer into the DOM; an image the server
// holds until the page reports back delays the load event, so --dump-dom shows the result.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { listen, startCli, startServer, sandboxOf } from './helpers/index.js';
import { needsTools, requireBinary } from './helpers/services.js';

const toolSkip = needsTools('chromium');
const chromium = toolSkip ? 'chromium' : requireBinary('chromium', 'chromium');

const PAGE = `<!doctype html><html><body><p id="status">loading</p><script>
const ws = new WebSocket('ws://' + location.host + '/ws');
ws.onopen = () => ws.send('ping from ' + location.host);
ws.onmessage = (e) => { document.getElementById('status').textContent = 'ws said: ' + e.data; ws.send('done'); };
ws.onerror = () => { document.getElementById('status').textContent = 'ws failed'; fetch('/gate-open'); };
</script><img src="/gate"></body></html>`;
const GIF = Buffer.from('R0lGODlhAQABAAAAACw=', 'base64');

let server;
let web;
let webPort;
let wss;
let cli;
let openGate = () => {};
const sandboxes = [];

before(async () => {
  server = await startServer();
  server.on('request', (req) => sandboxes.push(sandboxOf(req.headers)));
  let gate = new Promise((resolve) => (openGate = resolve));
  web = http.createServer(async (req, res) => {
    if (req.url === '/gate') {
      await gate;
      gate = new Promise((resolve) => (openGate = resolve));
      res.writeHead(200, { 'content-type': 'image/gif' }).end(GIF);
    } else if (req.url === '/gate-open') {
      openGate();
      res.end();
    } else {
      res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html' }).end(req.url === '/' ? PAGE : '');
    }
  });
  wss = new WebSocketServer({ server: web, path: '/ws' });
  wss.on('connection', (ws) => ws.on('message', (m) => (String(m) === 'done' ? openGate() : ws.send(`pong: ${m}`))));
  webPort = await listen(web);
  cli = await startCli(['--proxy-url', server.url, '-D', '0']);
});

after(async () => {
  openGate();
  const r = await cli?.stop();
  wss?.close();
  web?.close();
  await server?.close();
  if (r) assert.equal(r.code, 0, r.stderr);
});

async function dumpDom(proxyServer) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-chromium-'));
  try {
    // Held gates must not outlive a browser that gave up.
    const safety = setTimeout(() => openGate(), 15_000);
    const { stdout } = await new Promise((resolve, reject) => {
      execFile(
        chromium,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--disable-dev-shm-usage',
          `--user-data-dir=${dir}`,
          `--proxy-server=${proxyServer}`,
          '--dump-dom',
          `http://my-app:${webPort}/`,
        ],
        { timeout: 20_000, maxBuffer: 8 * 1024 * 1024 },
        (err, out, errOut) => (err ? reject(new Error(`chromium failed: ${err.message}\n${errOut.slice(-2000)}`)) : resolve({ stdout: out })),
      );
    });
    clearTimeout(safety);
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('Chromium with --proxy-server=socks5://: the page and its WebSocket go through sandbox my-app', { skip: toolSkip, timeout: 30_000 }, async () => {
  sandboxes.length = 0;
  const dom = await dumpDom(`socks5://127.0.0.1:${cli.port}`);
  assert.match(dom, new RegExp(`<p id="status">ws said: pong: ping from my-app:${webPort}</p>`), dom);
  assert.ok(sandboxes.length >= 2 && sandboxes.every((s) => s === 'my-app'), `upgrades: ${sandboxes}`);
});

test('Chromium with --proxy-server=http://: the same page through the HTTP proxy (absolute-form and CONNECT)', { skip: toolSkip, timeout: 30_000 }, async () => {
  sandboxes.length = 0;
  const dom = await dumpDom(`http://127.0.0.1:${cli.port}`);
  assert.match(dom, new RegExp(`<p id="status">ws said: pong: ping from my-app:${webPort}</p>`), dom);
  assert.ok(sandboxes.length >= 2 && sandboxes.every((s) => s === 'my-app'), `upgrades: ${sandboxes}`);
});
