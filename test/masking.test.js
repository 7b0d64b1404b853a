// The masking key of the client's frames, read off the wire: all zeros inside TLS and on a
// loopback connection, random over any other clear-text path (see src/client/masking.ts).
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { Duplex } from 'node:stream';
import { forwardStream } from '../dist/index.js';
import { CANARY_KEY, listen } from './helpers/index.js';
import { switching } from './helpers/hostile.js';
import { selfSignedCert } from './helpers/tls.js';

/** A sandbox proxy that completes the upgrade and resolves with the masking key of the first frame. */
async function maskReader(cert) {
  const server = cert ? https.createServer({ cert: cert.cert, key: cert.key }) : http.createServer();
  const key = new Promise((resolve) => {
    server.on('upgrade', (req, socket) => {
      socket.write(switching(req));
      let got = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        got = Buffer.concat([got, chunk]);
        if (got.length < 2) return;
        const len = got[1] & 0x7f;
        const at = len === 127 ? 10 : len === 126 ? 4 : 2;
        if (got.length < at + 4) return;
        assert.equal(got[1] & 0x80, 0x80, 'client frames carry the mask bit');
        resolve(got.subarray(at, at + 4).toString('hex'));
        socket.destroy();
      });
    });
  });
  await listen(server);
  return { port: server.address().port, key, close: () => new Promise((r) => server.close(r)) };
}

async function firstMask(proxyUrl, cert, extra = {}) {
  const stream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
  const server = await maskReader(cert);
  try {
    const done = forwardStream({ sandbox: 'sbx-1', remotePort: 7, credentials: { apiKey: CANARY_KEY }, proxyUrl: proxyUrl(server.port), stream, ...extra });
    stream.push('hello');
    const key = await server.key;
    await done.catch(() => {});
    return key;
  } finally {
    stream.destroy();
    await server.close();
  }
}

test('frames over wss carry a zero masking key', async () => {
  const cert = selfSignedCert();
  try {
    // An agent that trusts the throwaway certificate (the library reads no CA option of its own).
    const agent = new https.Agent({ ca: cert.cert });
    assert.equal(await firstMask((port) => `https://127.0.0.1:${port}`, cert, { agent }), '00000000');
  } finally {
    cert.close();
  }
});

test('frames over plain ws to a loopback proxy carry a zero masking key', async () => {
  assert.equal(await firstMask((port) => `http://127.0.0.1:${port}`), '00000000');
});

test('frames over plain ws to any other host keep random masking keys', async () => {
  // 0.0.0.0 reaches this machine, but is not a loopback name: a path an intermediary could sit on.
  const keys = new Set();
  for (let i = 0; i < 3; i += 1) keys.add(await firstMask((port) => `http://0.0.0.0:${port}`, undefined, { allowInsecure: true }));
  assert.ok(![...keys].includes('00000000') && keys.size > 1, `keys: ${[...keys]}`);
});
