// Real servers for end-to-end tests: redis-server, PostgreSQL and OpenSSH's sshd, each started on a
// free loopback port in its own temp dir and stopped by PID. A missing binary fails the test with a
// line naming the Debian package: CI (.ci/run) installs them, so skipping would hide a broken setup.
// Elsewhere (macOS, Windows) a test needing a tool that is not there skips, naming it: needsTools().
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, startCli, startServer } from './index.js';
import { sshdConfig } from './sshd-config.js';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
// A free port can be taken between freePort() and the server's bind; try again with another one.
const BIND_ATTEMPTS = 3;

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** `name` on PATH (on Windows, with each extension of PATHEXT: curl.exe, npm.cmd), or undefined. */
export function findTool(name) {
  const windows = process.platform === 'win32';
  const dirs = (process.env.PATH ?? '').split(path.delimiter).concat(windows ? [] : ['/usr/sbin', '/sbin', '/usr/local/sbin']);
  const extensions = windows ? ['', ...(process.env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';').filter(Boolean)] : [''];
  for (const dir of dirs) {
    for (const ext of extensions) {
      const file = path.join(dir, name + ext);
      if (dir && existsSync(file)) return file;
    }
  }
  return undefined;
}

/**
 * The skip reason of a test that needs these tools. None on Linux: CI installs them all there, and
 * a missing one fails with the package to install. Elsewhere, the ones not found.
 */
export function needsTools(...tools) {
  if (process.platform === 'linux') return false;
  const missing = tools.filter((tool) => findTool(tool) === undefined);
  return missing.length === 0 ? false : `needs ${missing.join(', ')}, not found on this ${process.platform} machine`;
}

/** Absolute path of `name`, or a failure that says which package provides it. */
export function requireBinary(name, pkg) {
  const found = findTool(name);
  if (!found) throw new Error(`${name} not found on PATH: install the Debian package ${pkg} (.ci/run does)`);
  return found;
}

/**
 * Directory holding initdb and postgres. Debian keeps them in /usr/lib/postgresql/<version>/bin,
 * off PATH; some images add symlinks in /usr/local/bin. Both must come from the same version.
 */
export function postgresBinDir() {
  const linked = findTool('initdb');
  if (linked) {
    const dir = path.dirname(realpathSync(linked));
    if (existsSync(path.join(dir, 'postgres'))) return dir;
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^[0-9.]+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const dir = path.join(root, v, 'bin');
    if (existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error('initdb/postgres not found on PATH or in /usr/lib/postgresql/*/bin: install the Debian package postgresql (.ci/run does)');
}

/** psql of the server's own version when present, else the one on PATH. */
export function psqlBinary() {
  try {
    const own = path.join(postgresBinDir(), 'psql');
    if (existsSync(own)) return own;
  } catch {
    // fall through to PATH: the server test reports a missing server itself
  }
  return requireBinary('psql', 'postgresql-client');
}

/** Runs a command to completion; rejects with its output when it fails. */
export function run(file, args, { input, timeoutMs = 30_000, ...options } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer', ...options }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stderr.toString()}`;
        reject(err);
      } else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/**
 * A long-running server child. Keeps the tail of its output for error messages and reports an early
 * exit while we wait for it to become ready.
 */
function spawnServer(file, args, options = {}) {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let log = '';
  const keep = (d) => {
    log = (log + d.toString()).slice(-8000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = once(child, 'exit').catch(() => {});
  child.on('error', (err) => keep(`\nspawn error: ${err.message}`));
  return {
    child,
    exited,
    log: () => log,
    running: () => child.exitCode === null && child.signalCode === null,
    /** Signal, wait (bounded), then SIGKILL. */
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe()` until it resolves true, the server exits, or the time runs out. */
async function waitReady(server, probe, what) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!server.running()) throw new Error(`${what} exited before it was ready:\n${server.log()}`);
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop('SIGKILL');
  throw new Error(`${what} not ready after ${START_TIMEOUT_MS / 1000} s:\n${server.log()}`);
}

/** Connects, sends `send`, and resolves with the first bytes the server sends back. */
function firstReply(port, send) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => socket.destroy(new Error('no reply')), 2000);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('connect', () => socket.write(send));
    socket.once('data', (d) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(d.toString('latin1'));
    });
  });
}

/** Starts a server on a fresh free port, trying another port when the bind lost a race. */
async function onFreePort(what, start) {
  let last;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (err) {
      last = err;
      if (!/address already in use|could not bind|bind.*failed|Cannot assign/i.test(err.message)) throw err;
    }
  }
  throw new Error(`${what}: no free port after ${BIND_ATTEMPTS} attempts: ${last.message}`);
}

/** Runs `start(dir)` in a fresh temp dir, removed again if starting fails. */
async function inTempDir(prefix, start) {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    return await start(dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** What every service returns: its port, its log tail, and stop(), which also removes its temp dir. */
function serviceHandle(server, port, dir, stopSignal, extra = {}) {
  return {
    port,
    log: server.log,
    ...extra,
    async stop() {
      await server.stop(stopSignal);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** redis-server without persistence. Returns { port, stop() }. */
export async function startRedis() {
  const bin = requireBinary('redis-server', 'redis-server');
  return inTempDir('tl-redis-', (dir) =>
    onFreePort('redis-server', async (port) => {
      const server = spawnServer(bin, ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--dir', dir], { cwd: dir });
      await waitReady(server, async () => (await firstReply(port, 'PING\r\n')).startsWith('+PONG'), 'redis-server');
      return serviceHandle(server, port, dir, 'SIGTERM');
    }),
  );
}

function userIds(name) {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no ${name} user: install the Debian package postgresql (.ci/run does)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * A throwaway PostgreSQL cluster with trust auth for the `postgres` role, listening on 127.0.0.1 and a
 * socket in its temp dir. Postgres refuses to run as root, so as root both initdb and the server run
 * as the `postgres` user (spawned with its uid/gid, so the PID we stop is the postmaster's own).
 * Returns { port, user, database, psql(args), stop() }.
 */
export async function startPostgres() {
  const bin = postgresBinDir();
  const psql = psqlBinary();
  const ids = isRoot() ? userIds('postgres') : undefined;
  return inTempDir('tl-pg-', async (dir) => {
    const data = path.join(dir, 'data');
    const asOwner = { ...(ids ?? {}), cwd: dir, env: { ...process.env, HOME: dir, LC_ALL: 'C', LANG: 'C' } };
    if (ids) await chown(dir, ids.uid, ids.gid);
    await run(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { ...asOwner, timeoutMs: START_TIMEOUT_MS });
    return onFreePort('postgres', async (port) => {
      // fsync off: a test cluster is thrown away, and a shared disk makes fsyncs slow.
      const server = spawnServer(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-h', '127.0.0.1', '-F', '-c', 'max_connections=20', '-c', 'shared_buffers=16MB'], asOwner);
      /** psql -At straight to the server (not through any tunnel). */
      const direct = (args, options = {}) =>
        run(psql, ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-At', ...args], { env: { ...process.env, PGCONNECT_TIMEOUT: '5' }, ...options });
      await waitReady(server, async () => (await direct(['-c', 'SELECT 1'], { timeoutMs: 5000 })).stdout.toString().trim() === '1', 'postgres');
      // SIGINT is postgres' "fast" shutdown: it does not wait for clients to leave.
      return serviceHandle(server, port, dir, 'SIGINT', { user: 'postgres', database: 'postgres', psql: direct });
    });
  });
}

/**
 * OpenSSH's sshd in the foreground on 127.0.0.1 with its own config, host key and authorized_keys
 * holding one generated client key. Root may log in with that key (we usually run as root).
 * Returns { port, user, keyFile, stop() }.
 */
export async function startSshd() {
  // sshd re-executes itself, so it must be started by absolute path.
  const sshd = path.resolve(requireBinary('sshd', 'openssh-server'));
  const keygen = requireBinary('ssh-keygen', 'openssh-client');
  // sshd insists on its privilege separation directory even with our own config.
  if (isRoot()) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  return inTempDir('tl-sshd-', async (dir) => {
    const hostKey = path.join(dir, 'host_ed25519');
    const keyFile = path.join(dir, 'client_ed25519');
    await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'tl-test-host', '-f', hostKey]);
    await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'tl-test-client', '-f', keyFile]);
    await writeFile(path.join(dir, 'authorized_keys'), readFileSync(`${keyFile}.pub`), { mode: 0o600 });
    return onFreePort('sshd', async (port) => {
      const config = path.join(dir, `sshd_config_${port}`);
      await writeFile(config, sshdConfig({ port, hostKey, authorizedKeys: path.join(dir, 'authorized_keys') }));
      const server = spawnServer(sshd, ['-D', '-e', '-f', config]);
      // Its own log line, not a probe connection: a probe's forked child could outlive a quick stop()
      // and be left unreaped.
      await waitReady(server, async () => server.log().includes(`Server listening on 127.0.0.1 port ${port}`), 'sshd');
      return serviceHandle(server, port, dir, 'SIGTERM', { user: os.userInfo().username, keyFile });
    });
  });
}

/**
 * The built CLI forwarding a free local port to `targetPort` via an in-process reference server, as
 * sandbox sbx-1. `tunnels` lists the target port of every tunnel the server opened; stop() resolves to
 * the CLI's { code, stdout, stderr }.
 */
export async function startTunnel(targetPort) {
  const server = await startServer();
  const tunnels = [];
  server.on('open', (t) => tunnels.push(t.port));
  try {
    const cli = await startCli(['--proxy-url', server.url, 'sbx-1', `:${targetPort}`]);
    return {
      port: cli.port,
      tunnels,
      async stop() {
        const result = await cli.stop();
        await server.close();
        return result;
      },
    };
  } catch (err) {
    await server.close();
    throw err;
  }
}
