// A tunnel whose starter goes away without stopping it (npx killed with SIGTERM, which npm does not
// pass on) stops by itself, gracefully: summary, `stopped` event, ports given back. A tunnel started
// with --detach is meant to outlive its starter (see lifecycle.test.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, cliEnv, eventually, freePort, startEcho, startServer } from './helpers/index.js';

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const refused = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });

test('the parent dies without a signal to tl-tunnel: it notices, stops with a summary and gives the port back', { skip: process.platform === 'win32' && 'the middle process is a POSIX shell idiom' }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tl-parent-'));
  const echo = await startEcho();
  const server = await startServer();
  const port = await freePort();
  // A stand-in for npx: starts tl-tunnel (output to files, as npx's would go to the terminal), says
  // its pid, then waits to be killed.
  const middle = `
    const { spawn } = require('node:child_process');
    const fs = require('node:fs');
    const [cli, dir, ...args] = process.argv.slice(1);
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', fs.openSync(dir + '/out', 'w'), fs.openSync(dir + '/err', 'w')] });
    console.log(child.pid);
    setInterval(() => {}, 1000);
  `;
  const npx = spawn(process.execPath, ['-e', middle, CLI, dir, '--json', '--proxy-url', server.url, 'sbx-orphan', `${port}:${echo.port}`], { env: cliEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  let pid;
  try {
    pid = Number((await new Promise((resolve) => npx.stdout.once('data', resolve))).toString().trim());
    await eventually(async () => (await readFile(path.join(dir, 'out'), 'utf8')).includes('"listening"'), { timeoutMs: 20_000, what: 'tl-tunnel listening' });
    npx.kill('SIGKILL');
    await eventually(() => !alive(pid), { timeoutMs: 15_000, what: 'tl-tunnel gone after its parent' });
    const err = await readFile(path.join(dir, 'err'), 'utf8');
    assert.match(err, /Stopping: the process that started tl-tunnel \(pid \d+\) has gone away/);
    assert.match(err, /^Stopped: 0 connections served/m);
    const events = (await readFile(path.join(dir, 'out'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.event === 'stopped'), 'the stopped event');
    assert.equal(await refused(port), true, 'the port is free again');
  } finally {
    npx.kill('SIGKILL');
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    await server.close();
    await echo.close();
    await rm(dir, { recursive: true, force: true });
  }
});
