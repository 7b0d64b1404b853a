// Tunnels that scripts start, list and stop: --detach, ps, stop, logs, on real processes. Each test
// gets its own control directory (TL_TUNNEL_RUNTIME_DIR), so no other test's tunnel is listed.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CANARY_KEY, CLI, cliEnv, echoRoundTrip, eventually, randomBytes, runCli, sha256, startCli, startEcho, startServer, jsonEvents } from './helpers/index.js';
import { startRedis } from './helpers/services.js';
import { processAlive } from '../dist/index.js';

const dirs = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh control directory (not created: the CLI creates it 0700). */
function runtimeDir() {
  const parent = mkdtempSync(path.join(tmpdir(), 'tl-life-'));
  dirs.push(parent);
  return path.join(parent, 'run');
}

/** Whether the process runs: a zombie (exited, waiting for a slow init to reap it) does not. */
const alive = processAlive;

function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });
}

function runScript(script, env) {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** runCli with this test's control directory. */
function tl(args, dir, options = {}) {
  return runCli(args, { ...options, env: { TL_TUNNEL_RUNTIME_DIR: dir, ...options.env } });
}

test('--detach returns once listening; the tunnel forwards, ps lists it, stop ends it, logs keeps its summary', async () => {
  const dir = runtimeDir();
  const echo = await startEcho();
  const server = await startServer();
  try {
    const started = await tl(['-d', '--json', '--proxy-url', server.url, 'sbx-bg', `:${echo.port}`], dir);
    assert.equal(started.code, 0, started.stderr);
    const ev = jsonEvents(started.stdout);
    const listening = ev.find((e) => e.event === 'listening');
    const detached = ev.find((e) => e.event === 'detached');
    assert.ok(listening && detached, started.stdout);
    assert.equal(listening.tunnel, detached.id);
    assert.match(detached.id, /^[a-z][a-z2-9]{7}$/);
    assert.ok(alive(detached.pid), 'the background process runs after its starter exited');
    assert.match(started.stderr, /Forwarding 127\.0\.0\.1:\d+ -> sbx-bg:/);
    assert.match(started.stderr, new RegExp(`tl-tunnel stop ${detached.id}`));

    const data = randomBytes(256 * 1024);
    assert.equal(sha256(await echoRoundTrip(listening.addresses[0].port, data)), sha256(data));

    // A connection's bytes are counted when it ends, a moment after the client closed it.
    let listed;
    await eventually(async () => {
      const ps = await tl(['ps', '--json'], dir);
      assert.equal(ps.code, 0, ps.stderr);
      listed = JSON.parse(ps.stdout);
      return listed[0]?.bytesSent === data.length;
    }, { timeoutMs: 10_000, what: 'ps to count the connection' });
    const [row, ...rest] = listed;
    assert.equal(rest.length, 0);
    assert.equal(row.id, detached.id);
    assert.equal(row.pid, detached.pid);
    assert.equal(row.sandbox, 'sbx-bg');
    assert.equal(row.detached, true);
    assert.equal(row.connections, 1);
    assert.equal(row.bytesSent, data.length);
    assert.ok(row.forwards.some((f) => f.port === listening.addresses[0].port && f.remotePort === echo.port));
    const table = await tl(['ps'], dir);
    assert.match(table.stdout, /^ID +PID +SANDBOX +FORWARDS/);
    assert.match(table.stdout, new RegExp(`${detached.id} +${detached.pid} +sbx-bg +localhost:${listening.addresses[0].port}->${echo.port}`));

    const stop = await tl(['stop', detached.id.slice(0, 4)], dir);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, new RegExp(`Stopped ${detached.id} \\(sbx-bg, pid ${detached.pid}\\)`));
    assert.equal(alive(detached.pid), false, 'stop waits until the process is gone');
    assert.ok(await refused(listening.addresses[0].port), 'the port is free again');
    assert.deepEqual(readdirSync(dir).filter((n) => !n.endsWith('.log')), [], 'entry and socket removed');

    const logs = await tl(['logs', detached.id], dir);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /Stopping: asked by tl-tunnel stop/);
    assert.match(logs.stdout, /Stopped: 1 connection served/);
  } finally {
    await server.close();
    await echo.close();
  }
});

test('--detach with a bad key fails as a foreground run does (exit 3, the same line) and leaves nothing behind', async () => {
  const dir = runtimeDir();
  const server = await startServer();
  try {
    const args = ['--proxy-url', server.url, '--api-key', 'tl_apiKey_wrong0123456789', 'sbx-bad', ':5999'];
    const foreground = await tl(args, dir);
    const background = await tl(['--detach', ...args], dir);
    assert.equal(foreground.code, 3, foreground.stderr);
    assert.equal(background.code, 3, background.stderr);
    const errorLine = (text) => text.split('\n').find((l) => l.startsWith('error '));
    assert.equal(errorLine(background.stderr), errorLine(foreground.stderr));
    assert.deepEqual(readdirSync(dir), [], 'no entry, socket or log of a tunnel that never ran');
    const ps = await tl(['ps', '--json'], dir);
    assert.deepEqual(JSON.parse(ps.stdout), []);
  } finally {
    await server.close();
  }
});

test('ps lists foreground tunnels too, and forgets one whose process was killed with SIGKILL', async () => {
  const dir = runtimeDir();
  const echo = await startEcho();
  const server = await startServer();
  const cli = await startCli(['--proxy-url', server.url, 'sbx-fg', `:${echo.port}`], { env: { TL_TUNNEL_RUNTIME_DIR: dir } });
  try {
    const before = JSON.parse((await tl(['ps', '--json'], dir)).stdout);
    assert.equal(before.length, 1);
    assert.equal(before[0].pid, cli.child.pid);
    assert.equal(before[0].detached, false);
    assert.match((await tl(['ps'], dir)).stdout, /\* runs in a terminal/);
    cli.child.kill('SIGKILL');
    await cli.result();
    const ps = await tl(['ps', '--json'], dir);
    assert.deepEqual(JSON.parse(ps.stdout), [], 'a dead tunnel is never shown as running');
    assert.deepEqual(readdirSync(dir), [], 'its stale entry and socket are cleaned up');
  } finally {
    await server.close();
    await echo.close();
  }
});

test('stop: by sandbox name, --all, and an unknown id is exit 7', async () => {
  const dir = runtimeDir();
  const echo = await startEcho();
  const server = await startServer();
  try {
    const ids = [];
    for (const sandbox of ['sbx-one', 'sbx-two', 'sbx-two']) {
      const r = await tl(['-d', '--json', '--proxy-url', server.url, sandbox, `:${echo.port}`], dir);
      assert.equal(r.code, 0, r.stderr);
      ids.push(jsonEvents(r.stdout).find((e) => e.event === 'detached'));
    }
    const unknown = await tl(['stop', 'zzzzzzzz', 'sbx-one'], dir);
    assert.equal(unknown.code, 7, unknown.stderr);
    assert.match(unknown.stderr, /^error No running tunnel matches "zzzzzzzz"; `tl-tunnel ps` lists them$/m);
    assert.equal(JSON.parse((await tl(['ps', '--json'], dir)).stdout).length, 3, 'nothing is stopped when a name is unknown');

    const byName = await tl(['stop', 'sbx-two', '--json'], dir);
    assert.equal(byName.code, 0, byName.stderr);
    assert.deepEqual(JSON.parse(byName.stdout).map((t) => t.id).sort(), [ids[1].id, ids[2].id].sort());
    const all = await tl(['stop', '--all'], dir);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stderr, new RegExp(`Stopped ${ids[0].id}`));
    for (const t of ids) assert.equal(alive(t.pid), false);
    const none = await tl(['stop', '--all'], dir);
    assert.equal(none.code, 0);
    assert.match(none.stderr, /No tunnels running/);
    assert.equal((await tl(['stop'], dir)).code, 2);
  } finally {
    await server.close();
    await echo.close();
  }
});

const asRoot = process.getuid?.() === 0;
test('another user\'s control directory, socket or entry is never trusted', { skip: asRoot ? false : 'needs root to make files owned by another user' }, async () => {
  const nobody = 65534;
  // A directory someone else made where ours would be: refused, for ps, detach and the foreground.
  const foreign = runtimeDir();
  mkdirSync(foreign, { mode: 0o700 });
  chownSync(foreign, nobody, nobody);
  const ps = await tl(['ps'], foreign);
  assert.equal(ps.code, 1, ps.stderr);
  assert.match(ps.stderr, /belongs to another user \(uid 65534\); it is not trusted/);
  const server = await startServer();
  const echo = await startEcho();
  try {
    const detach = await tl(['-d', '--proxy-url', server.url, 'sbx-x', `:${echo.port}`], foreign);
    assert.equal(detach.code, 1, detach.stderr);
    assert.match(detach.stderr, /TL_TUNNEL_RUNTIME_DIR/);
    // A directory others may write to is refused too.
    const open = runtimeDir();
    mkdirSync(open, { mode: 0o700 });
    chmodSync(open, 0o777);
    assert.match((await tl(['ps'], open)).stderr, /can be used by other users \(mode 0777\)/);

    // In our own directory, a socket others may use, or an entry someone else owns, is ignored
    // with a warning and left alone (not removed, not asked).
    const dir = runtimeDir();
    const first = await tl(['-d', '--json', '--proxy-url', server.url, 'sbx-a', `:${echo.port}`], dir);
    const second = await tl(['-d', '--json', '--proxy-url', server.url, 'sbx-b', `:${echo.port}`], dir);
    const a = jsonEvents(first.stdout).find((e) => e.event === 'detached');
    const b = jsonEvents(second.stdout).find((e) => e.event === 'detached');
    chmodSync(path.join(dir, `${a.id}.sock`), 0o666);
    chownSync(path.join(dir, `${b.id}.json`), nobody, nobody);
    const listed = await tl(['ps', '--json'], dir);
    assert.deepEqual(JSON.parse(listed.stdout), []);
    assert.match(listed.stderr, new RegExp(`${a.id}\\.sock can be used by other users \\(mode 0666\\); not trusted, ignored`));
    assert.match(listed.stderr, new RegExp(`${b.id}\\.json belongs to another user \\(uid 65534\\); not trusted, ignored`));
    assert.ok(existsSync(path.join(dir, `${a.id}.sock`)) && existsSync(path.join(dir, `${b.id}.json`)));
    for (const t of [a, b]) process.kill(t.pid, 'SIGTERM');
    await eventually(() => !alive(a.pid) && !alive(b.pid), { what: 'the background tunnels to stop' });
  } finally {
    await server.close();
    await echo.close();
  }
});

test('a script: --detach --json, redis-cli through the tunnel, stop; nothing is left running', { skip: spawnSync('sh', ['-c', 'command -v redis-cli && command -v jq']).status === 0 ? false : 'needs redis-cli and jq' }, async () => {
  const dir = runtimeDir();
  const redis = await startRedis();
  const server = await startServer();
  try {
    const script = `set -euo pipefail
out=$(node "$CLI" --detach --json --proxy-url "$URL" my-sandbox ":$REDIS")
id=$(jq -r 'select(.event == "detached") | .id' <<<"$out")
port=$(jq -r 'select(.event == "listening") | .addresses[0].port' <<<"$out")
redis-cli -p "$port" SET greeting hello >/dev/null
redis-cli -p "$port" GET greeting
node "$CLI" stop "$id"
echo "$id"`;
    // Not spawnSync: the reference server runs in this process and must go on answering.
    const r = await runScript(script, { TL_TUNNEL_RUNTIME_DIR: dir, CLI, URL: server.url, REDIS: String(redis.port) });
    assert.equal(r.status, 0, r.stderr);
    const [value, id] = r.stdout.trim().split('\n');
    assert.equal(value, 'hello');
    assert.ok(!r.stdout.includes(CANARY_KEY) && !r.stderr.includes(CANARY_KEY));
    assert.deepEqual(JSON.parse((await tl(['ps', '--json'], dir)).stdout), []);
    const leftover = spawnSync('pgrep', ['-f', `TL_TUNNEL_DETACH_ID=${id}`]).stdout?.toString() ?? '';
    assert.equal(leftover, '');
    assert.deepEqual(readdirSync(dir), [`${id}.log`]);
  } finally {
    await server.close();
    await redis.stop();
  }
});

test('logs -f follows a detached tunnel until it stops; usage errors are exit 2', async () => {
  const dir = runtimeDir();
  const echo = await startEcho();
  const server = await startServer();
  try {
    const r = await tl(['-d', '--json', '--proxy-url', server.url, 'sbx-log', `:${echo.port}`], dir);
    const { id } = jsonEvents(r.stdout).find((e) => e.event === 'detached');
    const follow = spawn(process.execPath, [CLI, 'logs', '-f', id], { env: cliEnv({ TL_TUNNEL_RUNTIME_DIR: dir }), stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follow.stdout.setEncoding('utf8').on('data', (d) => (followed += d));
    const ended = new Promise((resolve) => follow.on('close', resolve));
    await eventually(() => followed.includes('Running in the background'), { timeoutMs: 10_000, what: 'logs -f to print the log so far' });
    assert.equal((await tl(['stop', id], dir)).code, 0);
    assert.equal(await ended, 0, 'logs -f ends when the tunnel has stopped');
    assert.match(followed, /Stopped: 0 connections served/);
    const bad = await tl(['logs'], dir);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error Missing required argument 'tunnel' \(see tl-tunnel logs --help\)$/m);
    assert.equal((await tl(['logs', 'nosuch12'], dir)).code, 7);
  } finally {
    await server.close();
    await echo.close();
  }
});
