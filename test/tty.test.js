// In a real terminal (tmux): Ctrl-C typed at the keyboard works while the spinner is up, a
// terminal of 0 columns cannot hang the spinner, and the live status line behaves: counts after
// traffic, -v lines above it, redrawn on resize, gone after Ctrl-C with the summary on its own line.
import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEcho, startServer, echoRoundTrip, freePort, eventually } from './helpers/index.js';
import { needsTools } from './helpers/services.js';
import { inTmux, lastLine, statusLineOf } from './helpers/tmux.js';

const tty = { skip: process.platform === 'win32' ? 'needs a POSIX pseudo-terminal' : needsTools('tmux') };

test('Ctrl-C typed during --wait stops at once (130), on a line of its own', tty, async () => {
  const port = await freePort();
  const server = await startServer();
  const term = await inTmux(['--wait', '30', '--proxy-url', server.url, 'sbx-tty', `${port}`]);
  try {
    // The spinner's text turns into "…: retrying (attempt N) after: …" within a second; a loaded
    // machine may capture the screen only after that, so either text is the spinner.
    await term.waitForScreen((lines) => lines.some((l) => /^[\u2800-\u28ff] Waiting for port \d+ in sandbox sbx-tty(…$|: retrying \(attempt \d+\))/u.test(l)), 'the spinner');
    await term.keys('C-c');
    assert.equal(await term.exitStatus(), 130);
    const lines = await term.screen();
    assert.ok(lines.includes('Interrupted before the tunnel opened'), lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('Waiting for port')), `the spinner line is erased:\n${lines.join('\n')}`);
  } finally {
    await term.kill();
    await server.close();
  }
});

test('a terminal resized to 0 columns while the spinner runs: nothing drawn, no busy loop, SIGTERM works', tty, async () => {
  const port = await freePort();
  const server = await startServer();
  const term = await inTmux(['--wait', '30', '--proxy-url', server.url, 'sbx-tty', `${port}`], { columns: 80 });
  try {
    await term.waitForScreen((lines) => lines.some((l) => l.includes('Waiting for port')), 'the spinner');
    await term.setColumns(0);
    // Let several frames come due at 0 columns (a runaway renderer would never return from one).
    await new Promise((r) => setTimeout(r, 500));
    await term.setColumns(40);
    await term.waitForScreen((lines) => lines.some((l) => /^[\u2800-\u28ff] Waiting for port/u.test(l) && l.length <= 37), 'the spinner redrawn within 40 columns');
    await term.setColumns(0);
    await new Promise((r) => setTimeout(r, 300));
    // A signal, not a key: this is about the renderer, whatever the terminal's input mode.
    process.kill(term.cliPid(), 'SIGTERM');
    assert.equal(await term.exitStatus(), 130);
  } finally {
    await term.kill();
    await server.close();
  }
});

test('status line: counts after traffic, -v lines scroll above it, resizes, gone after Ctrl-C', tty, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const local = await freePort();
  const term = await inTmux(['-v', '--proxy-url', server.url, 'sbx-tty', `${local}:${echo.port}`], { columns: 100, rows: 30 });
  try {
    await term.waitForScreen((lines) => statusLineOf(lines) === '0 open · 0 served · ↑ 0 B 0 B/s · ↓ 0 B 0 B/s', 'the idle status line');
    for (let i = 0; i < 3; i += 1) {
      const data = Buffer.alloc(1000, i);
      assert.deepEqual(await echoRoundTrip(local, data), data);
    }
    // A tunnel whose client left is not "open" while it lingers; its close line comes after the linger.
    const closed = (l) => l.filter((x) => / closed: 1000 B sent/.test(x)).length === 3;
    let lines = await term.waitForScreen((l) => /^0 open · 3 served · ↑ 2\.9 KiB .* · ↓ 2\.9 KiB /.test(statusLineOf(l) ?? '') && closed(l), 'the counts of three connections');
    // One status line, at the bottom, below the -v lines; no line mixes the two.
    assert.equal(lastLine(lines), statusLineOf(lines));
    assert.equal(lines.filter((l) => l.includes(' served · ')).length, 1, lines.join('\n'));
    const closes = lines.filter((l) => /^#\d 127\.0\.0\.1:\d+ -> sbx-tty:\d+ closed: 1000 B sent, 1000 B received/.test(l));
    assert.equal(closes.length, 3, lines.join('\n'));

    // Narrower: redrawn cut to fit, with no fragment of the wider line left behind.
    await term.resize(40);
    lines = await term.waitForScreen((l) => (statusLineOf(l) ?? '').endsWith('…'), 'the status line cut to 40 columns');
    assert.ok(statusLineOf(lines).length <= 37, statusLineOf(lines));
    assert.equal(lines.filter((l) => /KiB\/s|B\/s|served/.test(l)).length, 1, lines.join('\n'));
    assert.equal(lastLine(lines), statusLineOf(lines));
    // 0 columns: no line at all; back to a real width: drawn again.
    await term.setColumns(0);
    await term.waitForScreen((l) => statusLineOf(l) === undefined, 'no status line at 0 columns');
    await term.resize(100);
    await term.waitForScreen((l) => statusLineOf(l)?.startsWith('0 open · 3 served'), 'the status line back');

    await term.keys('C-c');
    assert.equal(await term.exitStatus(), 0);
    lines = await term.screen();
    assert.equal(statusLineOf(lines), undefined, lines.join('\n'));
    assert.ok(lines.includes('Stopped: 3 connections served; 2.9 KiB sent, 2.9 KiB received; no errors'), lines.join('\n'));
    assert.deepEqual(lines.filter((l) => l !== '').slice(-2), ['Stopped: 3 connections served; 2.9 KiB sent, 2.9 KiB received; no errors', '[exit 0]']);
  } finally {
    await term.kill();
    await server.close();
    await echo.close();
  }
});

test('a terminal that takes no output (Ctrl-S) does not stop forwarding; Ctrl-Q shows what was held', tty, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const local = await freePort();
  const term = await inTmux(['-v', '--proxy-url', server.url, 'sbx-tty', `${local}:${echo.port}`]);
  try {
    await term.waitForScreen((l) => statusLineOf(l) !== undefined, 'the status line');
    await term.keys('C-s');
    // Let a redraw come due while output is stopped (it used to block the whole process).
    await new Promise((r) => setTimeout(r, 700));
    for (let i = 0; i < 3; i += 1) {
      const data = Buffer.alloc(100, i);
      const answer = await Promise.race([echoRoundTrip(local, data), new Promise((r) => setTimeout(() => r('blocked'), 10_000))]);
      assert.deepEqual(answer, data, 'a round trip while the terminal is stopped');
    }
    await term.keys('C-q');
    const lines = await term.waitForScreen((l) => statusLineOf(l)?.startsWith('0 open · 3 served') && l.filter((x) => / closed: 100 B sent/.test(x)).length === 3, 'the status line after Ctrl-Q');
    assert.equal(lines.filter((l) => / closed: 100 B sent, 100 B received/.test(l)).length, 3, lines.join('\n'));
    assert.equal(lastLine(lines), statusLineOf(lines));
    await term.keys('C-c');
    assert.equal(await term.exitStatus(), 0);
  } finally {
    await term.kill();
    await server.close();
    await echo.close();
  }
});

test('status line: the last error is shown; --no-status draws none; Ctrl-C starts the summary on a new line', tty, async () => {
  const dead = await freePort();
  const server = await startServer();
  const local = await freePort();
  const term = await inTmux(['--proxy-url', server.url, 'sbx-tty', `${local}:${dead}`]);
  const plain = await inTmux(['--no-status', '--proxy-url', server.url, 'sbx-tty', `:${dead}`]);
  try {
    await term.waitForScreen((l) => statusLineOf(l) !== undefined, 'the status line');
    await echoRoundTrip(local, Buffer.from('x')).catch(() => {});
    await term.waitForScreen((l) => /^0 open · 0 served · 1 failed · .* · last error: port closed, \d+ s ago$/.test(statusLineOf(l) ?? ''), 'the last error');

    const lines = await plain.waitForScreen((l) => l.includes('Press Ctrl-C to stop'), 'startup lines');
    assert.equal(statusLineOf(lines), undefined);
    await plain.keys('C-c');
    assert.equal(await plain.exitStatus(), 0);
    const after = await plain.screen();
    // The terminal echoes ^C where the cursor is; the summary must not be glued to it.
    assert.ok(after.some((l) => /^Stopped: 0 connections served/.test(l)), after.join('\n'));
  } finally {
    await term.kill();
    await plain.kill();
    await server.close();
  }
});

test('closing the terminal (SIGHUP) stops like SIGTERM: stopped event, tunnels closed', tty, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const local = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-hup-'));
  const events = path.join(dir, 'events.jsonl');
  const term = await inTmux(['--json', '--proxy-url', server.url, 'sbx-tty', `${local}:${echo.port}`], { redirect: `> '${events}'` });
  try {
    // With --json, no status line: stdout is the script's, and stderr keeps plain lines.
    const start = await term.waitForScreen((l) => l.includes('Press Ctrl-C to stop'), 'startup lines');
    assert.equal(statusLineOf(start), undefined);
    const socket = net.connect(local, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write('hello');
    await once(socket, 'data');
    const pid = term.cliPid();
    await term.close();
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await eventually(() => !alive(), { timeoutMs: 10_000, what: 'the CLI to stop after SIGHUP' });
    // The tunnel was closed, so the local client sees its connection end.
    if (!socket.destroyed) await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 5000))]);
    assert.ok(socket.destroyed || socket.readableEnded, 'the local connection was closed');
    const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const stopped = lines.at(-1);
    assert.equal(stopped.event, 'stopped', JSON.stringify(lines));
    assert.equal(stopped.connections, 1);
    assert.ok(lines.some((e) => e.event === 'close' && e.id === 1), JSON.stringify(lines));
    socket.destroy();
  } finally {
    await term.kill();
    await server.close();
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Rows of the scrollback that show the status line (or a cut copy of it). */
const statusCopies = (rows) => rows.filter((l) => / served · /.test(l) || (l.length < 12 && l.endsWith('…')));

test('tiny terminals (3 to 8 columns): no status line is drawn, so no cut copies are left in the scrollback', tty, async () => {
  const echo = await startEcho();
  const server = await startServer();
  try {
    for (const columns of [3, 5, 8]) {
      const local = await freePort();
      const term = await inTmux(['-v', '--proxy-url', server.url, 'sbx-tty', `${local}:${echo.port}`], { columns, rows: 20 });
      try {
        await term.waitForScreen((l) => l.join('').replace(/\s/g, '').includes('PressCtrl-Ctostop'), `started at ${columns} columns`);
        for (let i = 0; i < 2; i += 1) assert.deepEqual(await echoRoundTrip(local, Buffer.alloc(100, i)), Buffer.alloc(100, i));
        await new Promise((r) => setTimeout(r, 700)); // redraws come due
        assert.deepEqual(statusCopies(await term.history()), [], `nothing drawn at ${columns} columns`);
        await term.resize(100);
        await term.waitForScreen((l) => statusLineOf(l)?.startsWith('0 open · 2 served'), 'the status line once wide enough');
        // One line: the one drawn now (its rates may have been redrawn since).
        const copies = statusCopies(await term.history());
        assert.equal(copies.length, 1, `at ${columns} columns:\n${copies.join('\n')}`);
        assert.match(copies[0], /^0 open · 2 served · /);
        await term.keys('C-c');
        assert.equal(await term.exitStatus(), 0);
      } finally {
        await term.kill();
      }
    }
  } finally {
    await server.close();
    await echo.close();
  }
});

test('Ctrl-Z erases the status line before the process stops; after fg it is drawn once again', { skip: tty.skip || (!existsSync('/proc/self/stat') && 'reads the process state from /proc') }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  const local = await freePort();
  const term = await inTmux(['--proxy-url', server.url, 'sbx-tty', `${local}:${echo.port}`]);
  const state = (pid) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').charAt(0);
  try {
    await term.waitForScreen((l) => statusLineOf(l) !== undefined, 'the status line');
    const pid = term.cliPid();
    await term.keys('C-z');
    await eventually(() => state(pid) === 'T', { timeoutMs: 10_000, what: 'the CLI stopped' });
    assert.deepEqual(statusCopies(await term.history()), [], 'nothing left of the status line while stopped');
    // What `fg` does: continue the job (the shell that runs it here stopped with it).
    process.kill(term.shellPid(), 'SIGCONT');
    process.kill(pid, 'SIGCONT');
    await term.waitForScreen((l) => statusLineOf(l) !== undefined, 'the status line after fg');
    assert.deepEqual(await echoRoundTrip(local, Buffer.from('after fg')), Buffer.from('after fg'));
    await term.keys('C-c');
    assert.equal(await term.exitStatus(), 0);
    assert.deepEqual(statusCopies(await term.history()), [], 'no copy in the scrollback after the stop');
  } finally {
    await term.kill();
    await server.close();
    await echo.close();
  }
});
