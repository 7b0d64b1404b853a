// The client reads binary frames straight out of the socket's reads (src/relay/frame-stream.ts)
// instead of waiting for ws to gather whole messages. These tests hold it to what ws guaranteed:
// every payload byte in order whatever the read boundaries, control frames still answered and
// obeyed, and every malformed stream refused with a protocol error.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import WebSocket, { WebSocketServer } from 'ws';
import { openTunnel } from '../dist/index.js';
import { streamBinaryFrames } from '../dist/relay/frame-stream.js';
import { CANARY_KEY, eventually, listen, randomBytes as randomBytesOf } from './helpers/index.js';
import { frame, startHostile, switching } from './helpers/hostile.js';
import http from 'node:http';

const MiB = 1024 * 1024;

/** A frame like frame(), with FIN as given (a fragment of a message when false). */
function fragment(opcode, payload, fin) {
  const f = frame(opcode, payload);
  if (!fin) f[0] &= 0x7f;
  return f;
}

/** The frames a client sent (masked), parsed: [{ opcode, payload }]. */
function clientFrames(buf) {
  const out = [];
  let at = 0;
  while (at + 2 <= buf.length) {
    let length = buf[at + 1] & 0x7f;
    let header = 2;
    if (length === 126) [length, header] = [buf.readUInt16BE(at + 2), 4];
    else if (length === 127) [length, header] = [Number(buf.readBigUInt64BE(at + 2)), 10];
    if (at + header + 4 + length > buf.length) break;
    const key = buf.subarray(at + header, at + header + 4);
    const payload = Buffer.from(buf.subarray(at + header + 4, at + header + 4 + length)).map((b, i) => b ^ key[i % 4]);
    out.push({ opcode: buf[at] & 0x0f, payload: Buffer.from(payload) });
    at += header + 4 + length;
  }
  return out;
}

/** Writes `bytes` in the given piece sizes, each in its own turn of the event loop. */
async function writeInPieces(socket, bytes, sizes) {
  let at = 0;
  for (let i = 0; at < bytes.length; i += 1) {
    const n = Math.max(1, sizes[i % sizes.length]);
    socket.write(bytes.subarray(at, at + n));
    at += n;
    await new Promise((r) => setImmediate(r));
  }
}

/** Opens a local connection and resolves with everything it received and how it ended. */
function collect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    let ended = false;
    let error;
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => (ended = true));
    socket.on('error', (err) => (error = err.code));
    socket.on('close', () => resolve({ data: Buffer.concat(chunks), ended, error }));
  });
}

/** A tunnel handle on one port whose proxy runs `behaviour(req, socket)` for each upgrade. */
async function tunnelTo(behaviour, options = {}) {
  const hostile = await startHostile({ 50: behaviour });
  const handle = await openTunnel({ sandbox: 'sbx-1', ports: ':50', credentials: { apiKey: CANARY_KEY }, proxyUrl: hostile.url, check: false, keepaliveMs: 0, ...options });
  const closes = [];
  handle.on('close', (e) => closes.push(e));
  return {
    port: handle.addresses[0].port,
    closes,
    hostile,
    close: async () => {
      await handle.close();
      await hostile.close();
    },
  };
}

test('the hook is installed on the ws this package pins (if a ws upgrade drops it, this fails)', async () => {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (w) => w.on('message', () => w.send(Buffer.from('pong'))));
  const port = await listen(server);
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  try {
    await once(ws, 'open');
    const pieces = [];
    assert.equal(streamBinaryFrames(ws, MiB, { data: (b) => pieces.push(b), error: assert.fail }), true);
    const messages = [];
    ws.on('message', (m) => messages.push(m));
    ws.send(Buffer.from('go'));
    while (pieces.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(Buffer.concat(pieces).toString(), 'pong');
    assert.equal(messages.length, 0, 'binary frames go to the hook, not to message events');
  } finally {
    ws.terminate();
    wss.close();
    server.close();
  }
});

test('fragments, every length encoding, empty frames, pings and pongs between fragments, split at every byte: the local client gets every byte in order and a clean end; pings are answered', { timeout: 30_000 }, async () => {
  const big = Buffer.alloc(70_000, 7);
  big.write('start');
  const frames = [
    frame(2, Buffer.from('one')),
    fragment(2, Buffer.from('two-a'), false),
    frame(9, Buffer.from('ping-1')),
    fragment(0, Buffer.alloc(0), false),
    frame(10, Buffer.from('unasked pong')),
    fragment(0, Buffer.alloc(300, 3), false),
    frame(0, Buffer.from('two-z')),
    frame(2, big),
    frame(2, Buffer.alloc(0)),
    frame(9, Buffer.alloc(0)),
    frame(2, Buffer.from('last')),
    frame(8, Buffer.from([0x03, 0xe8])),
    frame(2, Buffer.from('after the close: never delivered')),
  ];
  const expected = Buffer.concat([Buffer.from('one'), Buffer.from('two-a'), Buffer.alloc(300, 3), Buffer.from('two-z'), big, Buffer.from('last')]);
  const fromClient = [];
  const t = await tunnelTo(async (req, s) => {
    s.on('data', (d) => fromClient.push(d));
    s.write(switching(req));
    const bytes = Buffer.concat(frames);
    // The first 600 bytes one at a time (every header split everywhere), then in odd sizes.
    await writeInPieces(s, bytes.subarray(0, 600), [1]);
    await writeInPieces(s, bytes.subarray(600), [7, 1000, 3, 16_384]);
  });
  try {
    const got = await collect(t.port);
    assert.equal(got.data.length, expected.length);
    assert.ok(got.data.equals(expected), 'bytes differ');
    assert.equal(got.ended, true, 'a 1000 close ends the local connection with FIN');
    const pongs = clientFrames(Buffer.concat(fromClient)).filter((f) => f.opcode === 10);
    assert.deepEqual(pongs.map((f) => f.payload.toString()), ['ping-1', '']);
    while (t.closes.length === 0) await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.closes[0].error, undefined, t.closes[0].reason);
    assert.equal(t.closes[0].bytesReceived, expected.length);
  } finally {
    await t.close();
  }
});

test('random messages, fragments and control frames, cut at random places: the bytes come out exactly', { timeout: 60_000 }, async () => {
  let current;
  const t = await tunnelTo(async (req, s) => {
    s.write(switching(req));
    await writeInPieces(s, current.bytes, current.sizes);
  });
  const message = fc.array(fc.uint8Array({ maxLength: 20_000 }), { minLength: 1, maxLength: 4 });
  const control = fc.record({ opcode: fc.constantFrom(9, 10), payload: fc.uint8Array({ maxLength: 125 }) });
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(message, fc.option(control)), { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 }), async (messages, sizes) => {
        const frames = [];
        const payload = [];
        for (const [parts, ctl] of messages) {
          parts.forEach((p, i) => {
            frames.push(fragment(i === 0 ? 2 : 0, Buffer.from(p), i === parts.length - 1));
            payload.push(Buffer.from(p));
            // A control frame may come between the fragments of a message.
            if (ctl && i === 0) frames.push(frame(ctl.opcode, Buffer.from(ctl.payload)));
          });
        }
        frames.push(frame(8, Buffer.from([0x03, 0xe8])));
        current = { bytes: Buffer.concat(frames), sizes };
        const got = await collect(t.port);
        assert.ok(got.data.equals(Buffer.concat(payload)), `got ${got.data.length} bytes, expected ${Buffer.concat(payload).length}`);
        assert.equal(got.ended, true);
      }),
      { numRuns: 40 },
    );
  } finally {
    await t.close();
  }
});

/** Each malformed stream: what the proxy sends after the 101, and the error the tunnel must end with. */
const MALFORMED = [
  { what: 'a binary frame inside an unfinished message', bytes: [fragment(2, Buffer.from('a'), false), frame(2, Buffer.from('b'))], line: /protocol \(Invalid WebSocket frame: invalid opcode 2\)/, close: 1002 },
  { what: 'a text frame inside an unfinished message', bytes: [fragment(2, Buffer.from('a'), false), frame(1, Buffer.from('b'))], line: /protocol \(Invalid WebSocket frame: invalid opcode 1\)/, close: 1002 },
  { what: 'a continuation with no message', bytes: [frame(0, Buffer.from('a'))], line: /protocol \(Invalid WebSocket frame: invalid opcode 0\)/, close: 1002 },
  { what: 'a continuation larger than the maximum payload', bytes: [fragment(2, Buffer.from('a'), false), frame(0, Buffer.alloc(0), 2 * MiB)], line: /larger than the maximum payload/, close: 1009 },
  { what: 'a masked frame', bytes: [Buffer.from([0x82, 0x81, 1, 2, 3, 4, 0x61])], line: /MASK must be clear/, close: 1002 },
  { what: 'a reserved bit', bytes: [Buffer.from([0xc2, 0x01, 0x61])], line: /RSV1 must be clear/, close: 1002 },
  { what: 'a fragmented ping', bytes: [Buffer.from([0x09, 0x00])], line: /FIN must be set/, close: 1002 },
  { what: 'a 126-byte ping', bytes: [Buffer.concat([Buffer.from([0x89, 126, 0, 126]), Buffer.alloc(126)])], line: /invalid payload length 126/, close: 1002 },
  { what: 'an unknown opcode', bytes: [frame(3, Buffer.from('a'))], line: /invalid opcode 3/, close: 1002 },
  { what: 'a text message', bytes: [frame(1, Buffer.from('text'))], line: /text frame/, close: 1003 },
];

test('malformed frames end the tunnel with a protocol error and the right close code, even when they come a byte at a time', { timeout: 30_000 }, async () => {
  const fromClient = MALFORMED.map(() => []);
  // One remote port per case, all at once.
  const behaviours = Object.fromEntries(MALFORMED.map((c, i) => [60 + i, async (req, s) => {
    s.on('data', (d) => fromClient[i].push(d));
    s.write(switching(req));
    // Data first, so the reader is mid-stream when the bad frame comes.
    s.write(frame(2, Buffer.from('data first')));
    await writeInPieces(s, Buffer.concat(c.bytes), [1]);
  }]));
  const hostile = await startHostile(behaviours);
  const ports = MALFORMED.map((_, i) => `:${60 + i}`);
  const handle = await openTunnel({ sandbox: 'sbx-1', ports, credentials: { apiKey: CANARY_KEY }, proxyUrl: hostile.url, check: false, keepaliveMs: 0, maxPayload: MiB });
  const closes = [];
  handle.on('close', (e) => closes.push(e));
  try {
    const got = await Promise.all(MALFORMED.map((_, i) => collect(handle.addresses.find((a) => a.remotePort === 60 + i && a.family === 'IPv4').port)));
    await eventually(() => closes.length === MALFORMED.length, { what: 'a close per case', timeoutMs: 20_000 });
    MALFORMED.forEach((c, i) => {
      const e = closes.find((x) => x.remotePort === 60 + i);
      assert.equal(e.error?.code, 'TL_ERR_PROTOCOL', `${c.what}: ${e.reason}`);
      assert.match(e.error.message, c.line, c.what);
      assert.equal(got[i].ended, false, `${c.what}: a cut tunnel must not look like a clean end`);
      const sent = clientFrames(Buffer.concat(fromClient[i])).filter((f) => f.opcode === 8);
      assert.equal(sent[0]?.payload.readUInt16BE(0), c.close, `${c.what}: close code sent to the proxy`);
    });
  } finally {
    await handle.close();
    await hostile.close();
  }
});

test('a large frame whose sender stalls halfway: what came is passed on, not held until the frame ends', { timeout: 20_000 }, async () => {
  const t = await tunnelTo((req, s) => {
    s.write(switching(req));
    // Half of a 1.2 MB frame, then nothing more.
    s.write(frame(2, randomBytesOf(600_000), 1_200_000));
  });
  const socket = net.connect(t.port, '127.0.0.1');
  socket.on('error', () => {});
  let got = 0;
  socket.on('data', (d) => (got += d.length));
  try {
    // The relay holds at most its 256 KiB mark of an unfinished frame.
    await eventually(() => got >= 600_000 - 256 * 1024, { what: `most of the half frame (got ${got})`, timeoutMs: 10_000 });
  } finally {
    socket.destroy();
    await t.close();
  }
});
