// Shared test helpers: real sockets on 127.0.0.1 port 0, the built library from dist/, and the built
// CLI as a child process. Every CLI child's stdout and stderr is checked for the canary key.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { after } from 'node:test';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createTunnelServer } from '../../dist/index.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'bin', 'tl-tunnel.js');
export const SERVER_CLI = path.join(ROOT, 'bin', 'tl-tunnel-server.js');

/** A recognisable key: no test output may ever contain it. */
export const CANARY_KEY = 'tl_apiKey_CANARY7f3a9c1e5b2d8046aa';

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

export { randomBytes };

// Servers started through these helpers. A test that fails before closing its own must not keep the
// file running until the runner's timeout: what is still open once the file's tests and after hooks
// are done is closed (see the after hook below), with the connections it still has.
const openServers = new Set();

/** Listens on 127.0.0.1:0 and returns the server and its port. */
export async function listen(server) {
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  openServers.add(() => {
    for (const s of sockets) s.destroy();
    if (server.listening) server.close();
  });
  return server.address().port;
}

/** A TCP echo service: the "port inside the sandbox". */
export async function startEcho() {
  const sockets = new Set();
  const server = net.createServer({ allowHalfOpen: false }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(server);
  return {
    port,
    server,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** A free TCP port on 127.0.0.1 with nothing listening on it (for 502s). */
export async function freePort() {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise((r) => server.close(r));
  return port;
}

/** The reference tunnel server, in-process, with the canary key as its token. */
export async function startServer(options = {}) {
  const server = await createTunnelServer({ token: CANARY_KEY, ...options });
  // close() is idempotent: closing again after the test did is harmless.
  openServers.add(() => server.close());
  return server;
}

// A HOME that does not exist, one per test process: a program that writes into HOME (npm, a shell)
// in one test file must not create config folders that another file's CLI then finds.
const NO_HOME = `/nonexistent-home-${process.pid}`;
after(() => rmSync(NO_HOME, { recursive: true, force: true }));

// Running tunnels register in a control directory: one per test process, so that `tl-tunnel ps` in
// one file never sees (or stops) another file's tunnels.
export const RUNTIME_DIR = path.join(tmpdir(), `tl-test-runtime-${process.pid}`);
after(() => rmSync(RUNTIME_DIR, { recursive: true, force: true }));

/**
 * /proc (Linux) is where tests count descriptors and read memory: a test that needs it skips
 * elsewhere with this reason; one that only checks a detail there leaves the detail out.
 */
export const PROC_SKIP = existsSync('/proc/self/fd') ? false : 'reads /proc, which only Linux has';

/** Open file descriptors of `pid` (this process by default), from /proc. */
export function fdCount(pid = 'self') {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident memory of `pid` in bytes, from /proc. */
export function rssBytes(pid) {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

/** Environment for CLI children: the canary key, no colours, nothing inherited that changes behaviour. */
export function cliEnv(extra = {}) {
  // os.homedir() reads USERPROFILE on Windows, HOME elsewhere: both point at the test's home.
  const home = process.env.TL_TEST_HOME ?? NO_HOME;
  const env = { ...process.env, TENSORLAKE_API_KEY: CANARY_KEY, NO_COLOR: '1', HOME: home, USERPROFILE: home, TL_TUNNEL_RUNTIME_DIR: RUNTIME_DIR };
  for (const name of ['TENSORLAKE_PAT', 'TENSORLAKE_SANDBOX_PROXY_URL', 'TENSORLAKE_API_URL', 'TENSORLAKE_SANDBOX_API_URL', 'TENSORLAKE_ORGANIZATION_ID', 'TENSORLAKE_PROJECT_ID', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy', 'FORCE_COLOR', 'CI']) delete env[name];
  return { ...env, ...extra };
}

function assertNoCanary(text, where) {
  assert.ok(!text.includes(CANARY_KEY), `the API key leaked into ${where}:\n${text}`);
  assert.ok(!text.includes(CANARY_KEY.slice(10)), `part of the API key leaked into ${where}:\n${text}`);
}

/**
 * Runs the CLI to completion. Returns { code, stdout, stderr }. Fails the test if the canary key
 * shows up in either stream. Kills the child after `timeoutMs`.
 */
export function runCli(args, { env = {}, timeoutMs = 20_000, input, bin = CLI, uid, gid, cwd } = {}) {
  return new Promise((resolve, reject) => {
    // uid/gid: run as another user (root cannot meet "permission denied" on a low port).
    const ids = uid === undefined ? {} : { uid, gid: gid ?? uid };
    // cwd: where the search for .tensorlake/config.toml starts.
    const child = spawn(process.execPath, [bin, ...args], { env: cliEnv(env), stdio: ['pipe', 'pipe', 'pipe'], cwd, ...ids });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        assertNoCanary(stdout, 'stdout');
        assertNoCanary(stderr, 'stderr');
      } catch (err) {
        reject(err);
        return;
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Starts the CLI as a long-running forwarder with --json and waits for one `listening` event per
 * mapping. Returns { child, events, ports, stop(signal) } where stop resolves to { code, stdout, stderr }.
 */
// A test that fails before stopping its CLI must not leave it running: the file would then only
// end at the runner's timeout. The file's own after hooks (which may still stop a CLI gracefully)
// run after this one, so leftovers are killed a little later; the timer keeps nothing alive.
// The timer keeps nothing alive: it fires only when something left open would.
const liveChildren = new Set();
after(() => {
  setTimeout(() => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const close of openServers) close();
  }, 10_000).unref();
});

export async function startCli(args, { env = {}, mappings = 1, timeoutMs = 20_000, bin = CLI, cwd, ipc = false } = {}) {
  // ipc: an IPC channel, as a parent that stops it with the `shutdown` message spawns it.
  const child = spawn(process.execPath, [bin, '--json', ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])], cwd });
  let stdout = '';
  let stderr = '';
  const events = [];
  const waiters = [];
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d) => {
    stdout += d;
    let nl;
    while ((nl = stdout.indexOf('\n', events.consumed ?? 0)) >= 0) {
      const line = stdout.slice(events.consumed ?? 0, nl);
      events.consumed = nl + 1;
      const event = JSON.parse(line);
      events.push(event);
      for (const w of [...waiters]) w();
    }
  });
  liveChildren.add(child);
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  exited.then(() => liveChildren.delete(child));
  const result = async () => {
    const { code, signal } = await exited;
    assertNoCanary(stdout, 'stdout');
    assertNoCanary(stderr, 'stderr');
    return { code, signal, stdout, stderr, events };
  };
  /** Waits until `predicate(events)` holds. */
  const waitFor = (predicate, ms = timeoutMs, what = 'event') =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = predicate(events);
        if (found) {
          waiters.splice(waiters.indexOf(check), 1);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1);
        reject(new Error(`timed out waiting for ${what}; stderr:\n${stderr}\nstdout:\n${stdout}`));
      }, ms);
      waiters.push(check);
      check();
      exited.then(() => {
        if (waiters.includes(check)) {
          waiters.splice(waiters.indexOf(check), 1);
          clearTimeout(timer);
          reject(new Error(`CLI exited while waiting for ${what}; stderr:\n${stderr}\nstdout:\n${stdout}`));
        }
      });
    });
  const listening = await waitFor((ev) => ev.filter((e) => e.event === 'listening').length >= mappings && ev.filter((e) => e.event === 'listening'), timeoutMs, 'listening');
  const ports = listening.map((e) => e.addresses[0].port);
  // stderr is another pipe: lines written before the listening event may be read after it. The
  // startup lines end with "Press Ctrl-C to stop" (not with -q), so wait for that, boundedly.
  if (!args.includes('-q') && !args.includes('--quiet')) {
    const deadline = Date.now() + 3000;
    while (!stderr.includes('Press Ctrl-C to stop') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
  }
  return {
    child,
    events,
    ports,
    port: ports[0],
    waitFor,
    stderr: () => stderr,
    result,
    /** Stops it with a signal, or with an IPC message (a string or object that is not a signal name). */
    async stop(signal = 'SIGINT') {
      const running = child.exitCode === null && child.signalCode === null;
      if (running && typeof signal === 'string' && signal.startsWith('SIG')) child.kill(signal);
      else if (running) child.send(signal);
      return result();
    },
  };
}

/** The end of a forwarding test: the CLI, stopped, exits 0; then the servers it used close, in order. */
export async function stopCleanly(cli, ...servers) {
  const r = await cli.stop();
  assert.equal(r.code, 0, r.stderr);
  for (const server of servers) await server.close();
}

/** Connects to 127.0.0.1:port, sends `data`, half-closes, and returns everything received. */
export async function exchange(port, data, { host = '127.0.0.1' } = {}) {
  const socket = net.connect(port, host);
  const chunks = [];
  socket.on('data', (d) => chunks.push(d));
  await once(socket, 'connect');
  socket.end(data);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

/** Sends `data` on a connection and reads until `expected` bytes came back, then closes. */
export function echoRoundTrip(port, data, { host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    const chunks = [];
    let received = 0;
    socket.on('error', reject);
    socket.on('data', (d) => {
      chunks.push(d);
      received += d.length;
      if (received >= data.length) {
        socket.destroy();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.write(data);
  });
}

/** Waits for `predicate()` to be true, polling. */
export async function eventually(predicate, { timeoutMs = 5000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * The sandbox an upgrade names: its X-Tensorlake-Sandbox-Id, or, for a proxy at localhost or
 * 127.0.0.1 (a local stack, which routes on Host as upstream does), the `<id>` of `Host: <id>.local`.
 */
export function sandboxOf(headers) {
  return headers['x-tensorlake-sandbox-id'] ?? /^(.*)\.local$/.exec(headers.host ?? '')?.[1];
}

/** The JSON event lines of a CLI's stdout (with --json), parsed; other lines are skipped. */
export function jsonEvents(stdout) {
  return stdout
    .split(/\r?\n/)
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}
