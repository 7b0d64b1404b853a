// Proxy mode's parsers (SOCKS5, SOCKS4/4a, HTTP proxy requests, host -> sandbox): the cases that
// matter by hand, then fast-check: arbitrary bytes never throw and always give "need more", a
// result, or an error reply; chunking the input never changes the answer.
import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSocks5Greeting, parseSocks5Request, parseSocks4Request } from '../dist/proxy/socks.js';
import { parseHttpProxyRequest, parseAuthority } from '../dist/proxy/http-proxy.js';
import { stepHandshake } from '../dist/proxy/handshake.js';
import { destinationFor } from '../dist/proxy/destination.js';

const b = (...bytes) => Buffer.from(bytes);
const domainRequest = (host, port) => Buffer.concat([b(5, 1, 0, 3, host.length), Buffer.from(host, 'latin1'), b(port >> 8, port & 255)]);

test('SOCKS5: greeting picks "no authentication" or refuses with 0xff', () => {
  assert.deepEqual(parseSocks5Greeting(b(5)), { kind: 'more' });
  assert.deepEqual(parseSocks5Greeting(b(5, 2, 0)), { kind: 'more' });
  const ok = parseSocks5Greeting(b(5, 2, 2, 0));
  assert.equal(ok.kind, 'ok');
  assert.equal(ok.consumed, 4);
  assert.deepEqual([...ok.reply], [5, 0]);
  const userPass = parseSocks5Greeting(b(5, 1, 2));
  assert.equal(userPass.kind, 'error');
  assert.deepEqual([...userPass.reply], [5, 0xff]);
});

test('SOCKS5: CONNECT with IPv4, IPv6 and domain names; other commands and types refused', () => {
  assert.deepEqual(parseSocks5Request(b(5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90)), { kind: 'ok', consumed: 10, host: '127.0.0.1', port: 8080 });
  const v6 = parseSocks5Request(Buffer.concat([b(5, 1, 0, 4), Buffer.alloc(15), b(1), b(0, 22)]));
  assert.deepEqual(v6, { kind: 'ok', consumed: 22, host: '::1', port: 22 });
  const v6b = parseSocks5Request(b(5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 80));
  assert.equal(v6b.host, '2001:db8::1:0:0:2', 'RFC 5952: the first of two equal zero runs becomes ::');
  assert.deepEqual(parseSocks5Request(domainRequest('my-app', 3000)), { kind: 'ok', consumed: 7 + 6, host: 'my-app', port: 3000 });
  assert.deepEqual(parseSocks5Request(domainRequest('my-app', 3000).subarray(0, 9)), { kind: 'more' });
  const bind = parseSocks5Request(b(5, 2, 0, 1, 1, 2, 3, 4, 0, 80));
  assert.equal(bind.kind, 'error');
  assert.equal(bind.reply[1], 0x07);
  const atyp = parseSocks5Request(b(5, 1, 0, 9, 1, 2, 3, 4, 0, 80));
  assert.equal(atyp.reply[1], 0x08);
  assert.equal(parseSocks5Request(b(5, 1, 0, 1, 1, 2, 3, 4, 0, 0)).reply[1], 0x02);
});

test('SOCKS4 and 4a: IPv4 and host-name CONNECT', () => {
  assert.deepEqual(parseSocks4Request(Buffer.concat([b(4, 1, 0, 80, 127, 0, 0, 1), Buffer.from('me\0')])), { kind: 'ok', consumed: 11, host: '127.0.0.1', port: 80 });
  const a = Buffer.concat([b(4, 1, 0x0c, 0x38, 0, 0, 0, 1), Buffer.from('\0my-db\0')]);
  assert.deepEqual(parseSocks4Request(a), { kind: 'ok', consumed: a.length, host: 'my-db', port: 3128 });
  assert.deepEqual(parseSocks4Request(a.subarray(0, a.length - 1)), { kind: 'more' });
  const bind = parseSocks4Request(Buffer.concat([b(4, 2, 0, 80, 1, 2, 3, 4), Buffer.from('\0')]));
  assert.equal(bind.kind, 'error');
  assert.deepEqual([...bind.reply.subarray(0, 2)], [0, 0x5b]);
});

test('HTTP: CONNECT host:port, absolute-form rewritten to origin-form with Host and Connection: close', () => {
  const connect = parseHttpProxyRequest(Buffer.from('CONNECT my-app:8443 HTTP/1.1\r\nHost: my-app:8443\r\n\r\nEARLY'));
  assert.equal(connect.kind, 'ok');
  assert.equal(connect.mode, 'connect');
  assert.deepEqual([connect.host, connect.port, connect.consumed], ['my-app', 8443, 51]);
  const get = parseHttpProxyRequest(Buffer.from('GET http://My-App:3000/a/b?c=d HTTP/1.1\r\nHost: wrong\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nAccept: */*\r\n\r\n'));
  assert.equal(get.kind, 'ok');
  assert.deepEqual([get.mode, get.host, get.port], ['forward', 'My-App', 3000]);
  assert.equal(get.head.toString(), 'GET /a/b?c=d HTTP/1.1\r\nHost: My-App:3000\r\nAccept: */*\r\nConnection: close\r\n\r\n');
  const bare = parseHttpProxyRequest(Buffer.from('GET http://my-app HTTP/1.0\r\n\r\n'));
  assert.deepEqual([bare.port, bare.head.toString()], [80, 'GET / HTTP/1.0\r\nHost: my-app\r\nConnection: close\r\n\r\n']);
  const post = parseHttpProxyRequest(Buffer.from('POST http://a:1/ HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET http://a:1/ HTTP/1.1\r\n\r\n'));
  assert.deepEqual(post.body, { kind: 'length', length: 3 }, 'the body is framed by its length');
  const chunked = parseHttpProxyRequest(Buffer.from('POST http://a:1/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n'));
  assert.deepEqual(chunked.body, { kind: 'chunked' });
  assert.match(chunked.head.toString(), /\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n$/);
  const ws = parseHttpProxyRequest(Buffer.from('GET http://a:1/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
  assert.match(ws.head.toString(), /Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n$/);
});

test('HTTP: malformed or unsupported requests get an error reply naming the problem', () => {
  const cases = [
    ['GET / HTTP/1.1\r\n\r\n', 400, /This is a proxy/],
    ['GET https://a:1/ HTTP/1.1\r\n\r\n', 400, /use CONNECT/],
    ['CONNECT a HTTP/1.1\r\n\r\n', 400, /host:port/],
    ['CONNECT a:99999 HTTP/1.1\r\n\r\n', 400, /host:port/],
    ['GET http://u:p@a:1/ HTTP/1.1\r\n\r\n', 400, /authority/],
    ['GET http://a:1/ HTTP/2.0\r\n\r\n', 505, /HTTP\/1/],
    ['GET http://a:1/ HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n', 400, /header/],
    ['POST http://a:1/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /Conflicting/],
    ['POST http://a:1/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400, /Conflicting/],
    ['POST http://a:1/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 400, /Only Transfer-Encoding: chunked/],
    ['POST http://a:1/ HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 400, /Only Transfer-Encoding: chunked/],
    ['POST http://a:1/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /Only Transfer-Encoding: chunked/],
    ['GET  http://a:1/ HTTP/1.1\r\n\r\n', 400, /request line/],
  ];
  for (const [text, status, reason] of cases) {
    const r = parseHttpProxyRequest(Buffer.from(text));
    assert.equal(r.kind, 'error', text);
    assert.match(r.reply.toString(), new RegExp(`^HTTP/1.1 ${status} `), text);
    assert.match(r.message, reason, text);
  }
  assert.equal(parseHttpProxyRequest(Buffer.alloc(40 * 1024, 'a')).reply.toString().slice(0, 12), 'HTTP/1.1 431');
  assert.deepEqual(parseAuthority('[::1]:22', undefined), { host: '::1', port: 22 });
});

test('destinations: one label, <label>.sandbox, <label>.localhost; loopback names mean the command-line sandbox; the rest is refused', () => {
  assert.deepEqual(destinationFor('my-app', undefined), { sandbox: 'my-app' });
  assert.deepEqual(destinationFor('My-App.sandbox', undefined), { sandbox: 'my-app' });
  assert.deepEqual(destinationFor('sbx1.localhost.', undefined), { sandbox: 'sbx1' });
  for (const loop of ['localhost', '127.0.0.1', '::1', '[::1]', 'LOCALHOST']) {
    assert.deepEqual(destinationFor(loop, 'cli-sbx'), { sandbox: 'cli-sbx' }, loop);
    assert.match(destinationFor(loop, undefined).refused, /none was given/, loop);
  }
  for (const other of ['example.com', 'a.b.sandbox', '10.0.0.1', '127.0.0.2', '::2', '1234', 'xn--80ak6aa92e', '-a', 'a_b', '\u212Aelvin', 'a'.repeat(64), '', 'my-app.sandbox.tensorlake.ai']) {
    assert.ok('refused' in destinationFor(other, 'cli-sbx'), other);
    assert.match(destinationFor(other, 'cli-sbx').refused, /^".*"/, other);
  }
});

// ---- fuzzing ----

const socksish = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.constantFrom(4, 5), fc.uint8Array({ maxLength: 40 })).map(([v, rest]) => Buffer.concat([b(v), Buffer.from(rest)])),
  fc.tuple(fc.string({ maxLength: 20 }), fc.integer({ min: 0, max: 65535 }), fc.nat(30)).map(([h, p, cut]) => {
    const full = Buffer.concat([b(5, 1, 0), domainRequest(h.slice(0, 255), p)]);
    return full.subarray(0, Math.max(0, full.length - cut));
  }),
);
const httpPiece = fc.constantFrom('GET', 'CONNECT', 'POST', ' ', 'http://', 'https://', 'my-app', ':', '3000', '/', '?', '#', '@', '[::1]', 'HTTP/1.1', 'HTTP/1.0', '\r\n', '\n', 'Host: x', 'Content-Length: 5', 'Transfer-Encoding: chunked', 'Connection: upgrade', 'Upgrade: ws', ': ', '\0', '\u00ff', 'é', '\t');
const httpish = fc.oneof(
  fc.array(httpPiece, { maxLength: 20 }).map((p) => Buffer.from(p.join(''), 'latin1')),
  fc.array(httpPiece, { maxLength: 12 }).map((p) => Buffer.from(`GET http://my-app:3000/ HTTP/1.1\r\n${p.join('')}\r\n\r\n`, 'latin1')),
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.concat([Buffer.from('CONNECT '), Buffer.from(a)])),
);

function checkParse(r, buf) {
  assert.ok(['more', 'ok', 'error'].includes(r.kind), `bad kind ${r.kind}`);
  if (r.kind === 'error') {
    assert.ok(Buffer.isBuffer(r.reply) && typeof r.message === 'string');
  }
  if (r.kind === 'ok') {
    assert.ok(Number.isInteger(r.consumed) && r.consumed > 0 && r.consumed <= buf.length);
    assert.ok(Number.isInteger(r.port) && r.port >= 1 && r.port <= 65535, `port ${r.port}`);
    assert.equal(typeof r.host, 'string');
    assert.ok(r.host.length > 0);
  }
}

test('fuzz: SOCKS parsers never throw; results are in range', () => {
  fc.assert(
    fc.property(socksish, (buf) => {
      const greeting = parseSocks5Greeting(buf);
      assert.ok(['more', 'ok', 'error'].includes(greeting.kind));
      if (greeting.kind === 'ok') assert.ok(greeting.consumed >= 3 && greeting.consumed <= buf.length && greeting.reply.length === 2);
      const r5 = parseSocks5Request(buf);
      checkParse(r5, buf);
      checkParse(parseSocks4Request(buf), buf);
    }),
    { numRuns: 5000 },
  );
});

test('fuzz: the HTTP parser never throws; forwarded heads are one clean request', () => {
  fc.assert(
    fc.property(httpish, (buf) => {
      const r = parseHttpProxyRequest(buf);
      checkParse(r, buf);
      if (r.kind === 'ok' && r.mode === 'forward') {
        const head = r.head.toString('latin1');
        assert.ok(head.endsWith('\r\n\r\n') && head.indexOf('\r\n\r\n') === head.length - 4, 'one head');
        assert.ok(!/[\0\n](?<!\r\n)/.test(head.replace(/\r\n/g, '')), 'no bare LF or NUL');
        assert.equal(head.match(/^host:/gim)?.length, 1, 'exactly one Host');
      }
    }),
    { numRuns: 5000 },
  );
});

test('fuzz: a handshake gives the same answer whatever the chunking, and never throws', () => {
  const input = fc.oneof(socksish, httpish, fc.constant(Buffer.concat([b(5, 1, 0), domainRequest('my-app', 80), Buffer.from('early')])));
  fc.assert(
    fc.property(input, fc.array(fc.nat(), { maxLength: 5 }), (buf, cuts) => {
      const run = (chunks) => {
        const state = { greeted: false };
        let pending = Buffer.alloc(0);
        const written = [];
        for (const [i, chunk] of chunks.entries()) {
          pending = Buffer.concat([pending, chunk]);
          for (;;) {
            const step = stepHandshake(pending, state);
            // What the tunnel will carry: the replayed bytes, then whatever the client sends later.
            if (step.kind !== 'more') return { step, written, carried: step.kind === 'ok' ? Buffer.concat([step.handshake.replay, ...chunks.slice(i + 1)]) : undefined };
            pending = pending.subarray(step.consumed);
            if (step.write) written.push(step.write);
            if (step.consumed === 0 || pending.length === 0) break;
          }
        }
        return { step: { kind: 'more' }, written };
      };
      const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((x, y) => x - y);
      const chunks = [];
      let at = 0;
      for (const p of points) {
        chunks.push(buf.subarray(at, p));
        at = p;
      }
      chunks.push(buf.subarray(at));
      const whole = run([buf]);
      const split = run(chunks);
      assert.equal(split.step.kind, whole.step.kind);
      if (whole.step.kind === 'ok') {
        assert.deepEqual([split.step.handshake.host, split.step.handshake.port], [whole.step.handshake.host, whole.step.handshake.port]);
        assert.ok(split.carried.subarray(0, whole.carried.length).equals(whole.carried), 'no byte lost or reordered');
        assert.deepEqual(Buffer.concat(split.written), Buffer.concat(whole.written));
      }
      if (whole.step.kind === 'ok' || whole.step.kind === 'error') {
        for (const host of [whole.step.handshake?.host ?? 'x']) destinationFor(host, undefined);
      }
    }),
    { numRuns: 3000 },
  );
});

test('fuzz: destinationFor never throws and only ever names a valid label', () => {
  const hosts = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.domain(), fc.ipV4(), fc.ipV6(), fc.stringMatching(/^[A-Za-z0-9.-]{1,70}$/));
  fc.assert(
    fc.property(hosts, fc.option(fc.constant('cli-sbx')), (host, def) => {
      const d = destinationFor(host, def ?? undefined);
      if ('sandbox' in d) assert.match(d.sandbox, /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/);
      else assert.equal(typeof d.refused, 'string');
    }),
    { numRuns: 5000 },
  );
});

test('fuzz: whatever the chunking, exactly one request (head and framed body) crosses, and nothing after it', async () => {
  const { HttpExchange } = await import('../dist/proxy/http-exchange.js');
  const chunkedBody = fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 5 }).map((parts) => {
    const encoded = parts.map((p) => Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), Buffer.from(p), Buffer.from('\r\n')]));
    return Buffer.concat([...encoded, Buffer.from('0\r\nX-T: 1\r\n\r\n')]);
  });
  const request = fc.oneof(
    fc.constant({ body: { kind: 'none' }, bytes: Buffer.alloc(0) }),
    fc.uint8Array({ maxLength: 100 }).map((a) => ({ body: { kind: 'length', length: a.length }, bytes: Buffer.from(a) })),
    chunkedBody.map((bytes) => ({ body: { kind: 'chunked' }, bytes })),
  );
  fc.assert(
    fc.property(request, fc.uint8Array({ maxLength: 60 }), fc.array(fc.nat(), { maxLength: 6 }), (req, after, cuts) => {
      const head = Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      const exchange = new HttpExchange({ headBytes: head.length, body: req.body, upgrade: false });
      const stream = Buffer.concat([head, req.bytes, Buffer.from('GET http://other/ HTTP/1.1\r\n\r\n'), Buffer.from(after)]);
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
      let at = 0;
      const crossed = [];
      for (const p of [...points, stream.length]) {
        crossed.push(exchange.up(stream.subarray(at, p)));
        at = p;
      }
      assert.deepEqual(Buffer.concat(crossed), Buffer.concat([head, req.bytes]));
    }),
    { numRuns: 300 },
  );
});

test('the answer head says Connection: close; interim answers pass; a 101 leaves the connection raw', async () => {
  const { HttpExchange } = await import('../dist/proxy/http-exchange.js');
  const plain = new HttpExchange({ headBytes: 0, body: { kind: 'none' }, upgrade: false });
  const answer = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok';
  const out = Buffer.concat([...answer].map((ch) => plain.down(Buffer.from(ch, 'latin1')))).toString('latin1');
  assert.equal(out, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  const upgrade = new HttpExchange({ headBytes: 3, body: { kind: 'none' }, upgrade: true });
  assert.equal(upgrade.up(Buffer.from('GET')).toString(), 'GET');
  assert.throws(() => upgrade.up(Buffer.from('early')), /before its upgrade was answered/);
  const upgraded = new HttpExchange({ headBytes: 3, body: { kind: 'none' }, upgrade: true });
  upgraded.up(Buffer.from('GET'));
  assert.equal(upgraded.down(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe')).toString(), 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe');
  assert.equal(upgraded.up(Buffer.from('frames')).toString(), 'frames');
});
