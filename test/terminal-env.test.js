// What counts as an interactive terminal, as the well-known spinner libraries decide it: a TTY,
// unless TERM=dumb or CI is set; there the spinner and the status line give way to plain lines and
// nothing moves the cursor. Colours follow chalk's rules: FORCE_COLOR forces them (even into a pipe),
// FORCE_COLOR=0 and NO_COLOR turn them off.
import test from 'node:test';
import assert from 'node:assert/strict';
import { echoRoundTrip, freePort, runCli, startEcho, startServer } from './helpers/index.js';
import { inTmux, statusLineOf } from './helpers/tmux.js';
import { isInteractive, wantsColor } from '../dist/cli/terminal-kind.js';

const tty = { skip: process.platform === 'win32' ? 'needs a POSIX pseudo-terminal (tmux)' : false };

test('isInteractive: a TTY, and neither TERM=dumb nor CI (set to anything)', () => {
  assert.equal(isInteractive({ TERM: 'xterm-256color' }, { isTTY: true }), true);
  assert.equal(isInteractive({ TERM: 'xterm-256color' }, { isTTY: false }), false);
  assert.equal(isInteractive({ TERM: 'dumb' }, { isTTY: true }), false);
  assert.equal(isInteractive({ TERM: 'xterm', CI: 'true' }, { isTTY: true }), false);
  assert.equal(isInteractive({ TERM: 'xterm', CI: '' }, { isTTY: true }), false);
});

test('wantsColor: chalk\'s detection; NO_COLOR turns it off; FORCE_COLOR (not 0/false) turns it on', () => {
  assert.equal(wantsColor({}, 1), true);
  assert.equal(wantsColor({}, 0), false);
  assert.equal(wantsColor({ NO_COLOR: '1' }, 3), false);
  assert.equal(wantsColor({ NO_COLOR: '' }, 1), true, 'an empty NO_COLOR is unset (no-color.org)');
  assert.equal(wantsColor({ FORCE_COLOR: '1' }, 0), true);
  assert.equal(wantsColor({ FORCE_COLOR: '1', NO_COLOR: '1' }, 0), true);
  assert.equal(wantsColor({ FORCE_COLOR: '0' }, 0), false);
  assert.equal(wantsColor({ FORCE_COLOR: 'false' }, 0), false);
});

test('FORCE_COLOR colours the lines on a pipe; without it a pipe gets none', async () => {
  const port = await freePort();
  const forced = await runCli(['--proxy-url', `http://127.0.0.1:${port}`, 'sbx-1', '5432'], { env: { FORCE_COLOR: '1' } });
  assert.equal(forced.code, 6);
  assert.match(forced.stderr, /\x1b\[31merror\x1b\[39m Cannot reach/);
  const plain = await runCli(['--proxy-url', `http://127.0.0.1:${port}`, 'sbx-1', '5432'], { env: { NO_COLOR: '' } });
  assert.doesNotMatch(plain.stderr, /\x1b\[/);
});

for (const [name, options] of [
  ['TERM=dumb', { prefix: 'TERM=dumb' }],
  ['CI set', { env: { CI: 'true' } }],
]) {
  test(`${name} on a terminal: no spinner and no status line, plain lines only; Ctrl-C still stops with the summary`, tty, async () => {
    const echo = await startEcho();
    const server = await startServer();
    const local = await freePort();
    const term = await inTmux(['--proxy-url', server.url, 'sbx-tty', `${local}:${echo.port}`], options);
    try {
      let lines = await term.waitForScreen((l) => l.includes('Press Ctrl-C to stop'), 'startup lines');
      // The spinner's text became a line of its own, and the outcome has no symbol drawn over it.
      assert.ok(lines.includes('Checking sandbox sbx-tty…'), lines.join('\n'));
      const data = Buffer.alloc(500, 1);
      assert.deepEqual(await echoRoundTrip(local, data), data);
      await new Promise((r) => setTimeout(r, 700)); // a status line would have been drawn by now
      lines = await term.screen();
      assert.equal(statusLineOf(lines), undefined, lines.join('\n'));
      await term.keys('C-c');
      assert.equal(await term.exitStatus(), 0);
      lines = await term.screen();
      assert.ok(lines.some((l) => l.startsWith('Stopped: 1 connection served')), lines.join('\n'));
      assert.ok(lines.includes('^C'), `the echoed ^C keeps a line of its own:\n${lines.join('\n')}`);
    } finally {
      await term.kill();
      await server.close();
      await echo.close();
    }
  });
}
