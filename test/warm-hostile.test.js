// Warm connections and proxy-mode routes under local programs and networks that do their worst:
// a thousand sandbox names through -D leave a bounded number of warm sockets and fds; a middlebox
// that silently forgets idle flows costs a connection about a second, not the connect timeout; a
// name whose sandbox was terminated and given to a new one is looked up again.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { cachedRoutes, ROUTE_TTL_MS, MAX_ROUTES } from '../dist/proxy/routes.js';
import { PROC_SKIP, echoRoundTrip, eventually, fdCount, listen, startCli, startEcho, startServer, sandboxOf } from './helpers/index.js';
import { socks5Connect } from './helpers/socks.js';


test('1,000 sandbox names through -D: warm sockets stay bounded and fds come back near the baseline', { skip: PROC_SKIP, timeout: 120_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  // Every connection the CLI makes to the proxy, and how many are open at once.
  let open = 0;
  let peak = 0;
  server.on('request', () => {});
  // --linger 0: a tunnel ends as soon as its client does, so what stays open is what the CLI holds.
  const cli = await startCli(['--proxy-url', server.url, '--linger', '0', '-D', '0']);
  const counter = setInterval(() => {
    open = fdCount(cli.child.pid);
    peak = Math.max(peak, open);
  }, 50);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const baseline = fdCount(cli.child.pid);
    const names = Array.from({ length: 1000 }, (_, i) => `name-${i}`);
    const CONCURRENCY = 16;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < names.length) {
          const name = names[next++];
          const { code, socket } = await socks5Connect(cli.port, name, echo.port);
          assert.equal(code, 0, name);
          await new Promise((resolve) => {
            socket.once('data', resolve);
            socket.resume();
            socket.write('x');
          });
          socket.destroy();
        }
      }),
    );
    // Tunnels (2 fds each) for the clients in flight, plus at most 16 warm sockets in all.
    assert.ok(peak <= baseline + 2 * CONCURRENCY + 16 + 8, `peak ${peak} fds against a baseline of ${baseline}`);
    // Warm sockets retire within about 10 s of the burst; the routes hold no sockets of their own.
    await eventually(() => fdCount(cli.child.pid) <= baseline + 2, { timeoutMs: 20_000, intervalMs: 250, what: `fds back near ${baseline} (now ${fdCount(cli.child.pid)})` });
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
  } finally {
    clearInterval(counter);
    await cli.stop();
    await server.close();
    await echo.close();
  }
});

/**
 * A TCP forwarder in front of `port` that, like a NAT that forgot a flow, silently stops carrying
 * a connection (both ways, no FIN, no reset) once it has been idle for `idleMs`.
 */
async function startForgetfulNat(port, idleMs) {
  const sockets = new Set();
  const nat = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    let last = Date.now();
    let forgotten = false;
    const check = setInterval(() => {
      if (Date.now() - last > idleMs) forgotten = true;
    }, 50);
    const carry = (from, to) =>
      from.on('data', (d) => {
        if (forgotten) return;
        last = Date.now();
        to.write(d);
      });
    carry(client, upstream);
    carry(upstream, client);
    const end = () => {
      clearInterval(check);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  const natPort = await listen(nat);
  return {
    url: `http://127.0.0.1:${natPort}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => nat.close(r));
    },
  };
}

test('a warm socket that a middlebox silently forgot costs about a second, not the connect timeout', { timeout: 60_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const nat = await startForgetfulNat(server.port, 2000);
  const cli = await startCli(['--proxy-url', nat.url, 'sbx-nat', `:${echo.port}`]);
  try {
    // The first connection warms the pool; then every warm socket sits idle past what the NAT keeps.
    assert.equal((await echoRoundTrip(cli.port, Buffer.from('first'))).toString(), 'first');
    await new Promise((r) => setTimeout(r, 3000));
    const started = Date.now();
    assert.equal((await echoRoundTrip(cli.port, Buffer.from('after the NAT forgot'))).toString(), 'after the NAT forgot');
    const took = Date.now() - started;
    // The connect timeout is 10 s; a fresh connection after the warm one goes unanswered takes
    // at most ~1 s more than usual. Generous for a loaded machine, far below 10 s.
    assert.ok(took < 6000, `the tunnel took ${took} ms`);
    // A stop right after traffic counts open tunnels as cut: let the last one finish first.
    await new Promise((r) => setTimeout(r, 2500));
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.events.some((e) => e.event === 'error'), r.stdout);
  } finally {
    await cli.stop();
    await nat.close();
    await server.close();
    await echo.close();
  }
});

test('proxy mode looks a name up again once its sandbox is gone, and the name may belong to a new sandbox', { timeout: 60_000 }, async () => {
  const echo = await startEcho();
  // `db` is sandbox old-db until it is terminated (1.5 s after its first lookup); then new-db has the name.
  const server = await startServer({
    sandboxes: [
      { id: 'old-db', name: 'db', transitions: [{ after_ms: 1500, status: 'terminated' }] },
      { id: 'new-db', name: 'db' },
    ],
  });
  const seen = [];
  server.on('request', (req) => seen.push(sandboxOf(req.headers)));
  const cli = await startCli(['--proxy-url', server.url, '-D', '0'], { env: { TENSORLAKE_SANDBOX_API_URL: server.url } });
  const through = async () => {
    const { code, socket } = await socks5Connect(cli.port, 'db', echo.port);
    socket.destroy();
    return code;
  };
  try {
    assert.equal(await through(), 0);
    assert.deepEqual(seen, ['old-db']);
    await new Promise((r) => setTimeout(r, 2000));
    // The cached route still names old-db: this connection learns it is gone.
    assert.notEqual(await through(), 0);
    // The next one looks `db` up again and reaches the sandbox that has the name now.
    await eventually(async () => (await through()) === 0, { timeoutMs: 10_000, intervalMs: 200, what: 'a connection to the new db' });
    assert.equal(seen.at(-1), 'new-db');
  } finally {
    await cli.stop();
    await server.close();
    await echo.close();
  }
});

test('routes: bounded, least recently used first out, looked up again after their time, closed when dropped', async () => {
  let clock = 0;
  const closed = [];
  let lookups = 0;
  const resolve = async (sandbox) => {
    lookups += 1;
    return { sandbox, connect: async () => undefined, close: () => closed.push(sandbox) };
  };
  const routes = cachedRoutes({}, resolve, () => clock);
  await routes('a');
  await routes('a');
  assert.equal(lookups, 1, 'a fresh route is reused');
  clock += ROUTE_TTL_MS;
  await routes('a');
  assert.equal(lookups, 2, 'an expired route is looked up again');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(closed, ['a'], 'and the expired one lets go of what it holds');
  for (let i = 0; i < MAX_ROUTES + 10; i++) await routes(`n${i}`);
  await new Promise((r) => setImmediate(r));
  assert.equal(closed.length, 1 + 11, 'the cache never holds more than MAX_ROUTES');
  routes.forget('n300');
  await routes('n300');
  assert.equal(lookups, 2 + MAX_ROUTES + 10 + 1, 'a forgotten name is looked up again');
});
