// Property tests (fast-check): parsers fail only with usage errors, specs round-trip, derived URLs
// never leave the allowed hosts, and bytes arrive unchanged whatever their chunking.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { openTunnel, parsePortSpec, formatPortSpec, parseSandboxName, resolveProxyTarget, tunnelUrl, TunnelError } from '../dist/index.js';
import { CANARY_KEY, listen, startServer } from './helpers/index.js';

const TUNNEL = '/api/v1/tunnels/tcp';

/** Runs `fn` and returns its result, or the error it threw, which must be a TL_ERR_USAGE TunnelError. */
function usageOrValue(fn) {
  try {
    return { value: fn() };
  } catch (err) {
    assert.ok(err instanceof TunnelError, `threw a non-TunnelError: ${err?.stack ?? err}`);
    assert.equal(err.code, 'TL_ERR_USAGE', err.message);
    return { error: err };
  }
}

// Strings built from the pieces port specs are made of, so that many are nearly valid.
const specPiece = fc.constantFrom('0', '1', '80', '5432', '65535', '65536', '99999', '00080', '+80', '-1', '0x10', '8.0', ' ', '', ':', '::', '[', ']', '::1', '[::1]', '127.0.0.1', '0.0.0.0', 'localhost', '[localhost]', 'fe80::1%lo', 'a', '\n', '٣');
const mapping = fc.record(
  {
    address: fc.oneof(fc.constant(undefined), fc.ipV4(), fc.ipV6()),
    localPort: fc.integer({ min: 0, max: 65535 }),
    remotePort: fc.integer({ min: 1, max: 65535 }),
  },
  { requiredKeys: ['localPort', 'remotePort'] },
);
// Valid specs in every accepted form, some with one piece spliced in or one character cut out.
const nearlyValid = fc
  .tuple(mapping, fc.constantFrom('full', 'remote', 'colon'), fc.nat(), fc.option(specPiece), fc.boolean())
  .map(([m, form, at, piece, cut]) => {
    const text = form === 'remote' ? String(m.remotePort) : form === 'colon' ? `:${m.remotePort}` : formatPortSpec(m);
    const i = at % (text.length + 1);
    if (piece === null) return text;
    return cut ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + piece + text.slice(i);
  });
const specLike = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.array(specPiece, { maxLength: 6 }).map((parts) => parts.join('')), fc.stringMatching(/^[0-9:[\]a-f.]{0,24}$/), nearlyValid);

test('parsePortSpec throws only TL_ERR_USAGE errors, and what it accepts is in range', () => {
  let accepted = 0;
  fc.assert(
    fc.property(specLike, (spec) => {
      const { value } = usageOrValue(() => parsePortSpec(spec));
      if (value === undefined) return;
      accepted += 1;
      assert.ok(Number.isInteger(value.localPort) && value.localPort >= 0 && value.localPort <= 65535, spec);
      assert.ok(Number.isInteger(value.remotePort) && value.remotePort >= 1 && value.remotePort <= 65535, spec);
      assert.ok(value.address === undefined || isIP(value.address) !== 0, spec);
      // Whatever parsed formats to a canonical spec that parses to the same mapping.
      assert.deepEqual(parsePortSpec(formatPortSpec(value)), value, spec);
    }),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 100, `only ${accepted} generated specs were valid`);
});

test('formatPortSpec / parsePortSpec round-trip every valid mapping', () => {
  fc.assert(
    fc.property(mapping, (m) => {
      const expected = { address: m.address, localPort: m.localPort, remotePort: m.remotePort };
      assert.deepEqual(parsePortSpec(formatPortSpec(m)), expected);
    }),
    { numRuns: 2000 },
  );
});

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const sandboxLike = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 70 }),
  fc.stringMatching(/^[A-Za-z0-9-]{1,70}$/),
  fc.array(fc.constantFrom('a', 'Z', '9', '-', '.', '@', '#', '/', '%2e', ' ', 'ѕ', '\u212A', 'ｓ', ':', '?', '\\', '\0'), { maxLength: 12 }).map((p) => p.join('')),
);

test('sandbox names either fail as usage errors, or, where they become a host, fail or give one label under sandbox.tensorlake.ai', () => {
  let accepted = 0;
  fc.assert(
    fc.property(sandboxLike, fc.integer({ min: 1, max: 65535 }), (input, port) => {
      const { value: typed } = usageOrValue(() => parseSandboxName(input));
      if (typed === undefined) return;
      // As typed for the control plane; only a DNS label becomes part of a host name.
      assert.equal(typed, input);
      const { value: target } = usageOrValue(() => resolveProxyTarget(typed, undefined));
      if (target === undefined) return;
      accepted += 1;
      const name = typed.toLowerCase();
      assert.match(name, LABEL);
      const url = new URL(tunnelUrl(target, port));
      assert.equal(url.protocol, 'wss:');
      assert.equal(url.host, `${name}.sandbox.tensorlake.ai`);
      assert.equal(url.pathname, TUNNEL);
      assert.equal(url.search, `?port=${port}`);
      assert.equal(url.username + url.password + url.hash, '');
    }),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 100, `only ${accepted} generated names were valid`);
});

// Proxy URLs: well-formed web URLs of many schemes (with user info, query, fragment), and mangled ones.
const urlLike = fc.oneof(
  fc.webUrl({
    validSchemes: ['http', 'https', 'ws', 'wss', 'ftp', 'HTTP'],
    withQueryParameters: true,
    withFragments: true,
    authoritySettings: { withIPv4: true, withIPv6: true, withPort: true, withUserInfo: true },
  }),
  fc.webUrl({ validSchemes: ['http', 'https', 'ws', 'wss'], authoritySettings: { withIPv4: true, withIPv6: true, withPort: true } }),
  fc
    .tuple(
      fc.constantFrom('http://', 'https://', 'ws://', 'wss://', 'HTTPS://', 'http:', 'https:/', '//', ''),
      fc.array(fc.constantFrom('127.0.0.1', 'localhost', 'evil.example', 'sandbox.tensorlake.ai', '[::1]', '@', '#', '/', '\\', '?', ':', ':8443', '%2e', '%40', '.', ' ', '\t', 'ｌ', 'u:p@'), { maxLength: 6 }),
    )
    .map(([scheme, parts]) => scheme + parts.join('')),
  fc.string({ unit: 'binary', maxLength: 60 }),
);

test('proxy URLs either fail as usage errors or keep exactly the given host, with the tunnel path and nothing else', () => {
  let accepted = 0;
  fc.assert(
    fc.property(urlLike, fc.boolean(), fc.integer({ min: 1, max: 65535 }), (input, allowInsecure, port) => {
      const { value: target } = usageOrValue(() => resolveProxyTarget('sbx-1', input, allowInsecure));
      if (target === undefined) return;
      accepted += 1;
      const given = new URL(input);
      const url = new URL(tunnelUrl(target, port));
      assert.equal(url.host, given.host, input);
      assert.equal(url.protocol, { 'http:': 'ws:', 'ws:': 'ws:', 'https:': 'wss:', 'wss:': 'wss:' }[given.protocol], input);
      assert.equal(url.pathname, TUNNEL);
      assert.equal(url.search, `?port=${port}`);
      assert.equal(url.username + url.password + url.hash, '');
      assert.equal(target.secure, url.protocol === 'wss:');
      if (!target.secure && !allowInsecure) assert.ok(['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || url.hostname.startsWith('127.') || url.hostname.endsWith('.localhost'), input);
      // Printable ASCII only: nothing was silently dropped or mapped by the URL parser.
      assert.match(input, /^[\x21-\x7e]+$/);
    }),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 100, `only ${accepted} generated URLs were accepted`);
});

/**
 * A target service that, per connection, records what it receives and sends the current case's
 * downstream chunks, yielding to the event loop between some of them.
 */
async function startScriptedTarget() {
  const state = { current: undefined, sockets: new Set() };
  const server = net.createServer((socket) => {
    const c = state.current;
    state.sockets.add(socket);
    // The startup check connects before any case is set.
    if (c === undefined) return void socket.end();
    socket.on('close', () => state.sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', (d) => c.up.push(d));
    void writeChunks(socket, c.downChunks, c.downYields);
  });
  const port = await listen(server);
  return { port, state, close: () => { for (const s of state.sockets) s.destroy(); return new Promise((r) => server.close(r)); } };
}

async function writeChunks(socket, chunks, yields) {
  for (const [i, chunk] of chunks.entries()) {
    if (socket.destroyed) return;
    socket.write(chunk);
    if (yields[i % yields.length]) await new Promise((r) => setImmediate(r));
  }
}

/** Splits `data` into chunks of the given sizes (cycled), never empty. */
function chunk(data, sizes) {
  const out = [];
  for (let at = 0, i = 0; at < data.length; i += 1) {
    const size = sizes.length === 0 ? data.length : sizes[i % sizes.length];
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return out;
}

test('random byte streams with random chunkings arrive byte-identical both ways through client and reference server', { timeout: 120_000 }, async () => {
  const target = await startScriptedTarget();
  const server = await startServer();
  const handle = await openTunnel({ sandbox: 'sbx-1', ports: `:${target.port}`, credentials: { apiKey: CANARY_KEY }, proxyUrl: server.url });
  const localPort = handle.addresses[0].port;
  const bytes = fc.uint8Array({ maxLength: 300_000, size: 'max' }).map((a) => Buffer.from(a));
  const sizes = fc.array(fc.integer({ min: 1, max: 70_000 }), { maxLength: 20 });
  const yields = fc.array(fc.boolean(), { minLength: 1, maxLength: 8 });
  try {
    await fc.assert(
      fc.asyncProperty(bytes, sizes, yields, bytes, sizes, yields, async (up, upSizes, upYields, down, downSizes, downYields) => {
        const c = { up: [], downChunks: chunk(down, downSizes), downYields };
        target.state.current = c;
        const socket = net.connect(localPort, '127.0.0.1');
        const received = [];
        let receivedLength = 0;
        socket.on('data', (d) => {
          received.push(d);
          receivedLength += d.length;
        });
        socket.on('error', () => {});
        await new Promise((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        });
        await writeChunks(socket, chunk(up, upSizes), upYields);
        const upLength = () => c.up.reduce((n, b) => n + b.length, 0);
        const deadline = Date.now() + 20_000;
        while ((receivedLength < down.length || upLength() < up.length) && Date.now() < deadline && !socket.destroyed) {
          await new Promise((r) => setTimeout(r, 5));
        }
        socket.destroy();
        assert.ok(Buffer.concat(c.up).equals(up), `upload differs: ${upLength()} of ${up.length} bytes`);
        assert.ok(Buffer.concat(received).equals(down), `download differs: ${receivedLength} of ${down.length} bytes`);
      }),
      { numRuns: 30 },
    );
  } finally {
    await handle.close();
    await server.close();
    await target.close();
  }
});
