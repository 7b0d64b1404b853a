// A real pseudo-terminal for the CLI: a private tmux server per call (its own socket), so keys are
// typed (Ctrl-C reaches the process through the terminal, not `kill`) and the screen is captured.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CANARY_KEY, CLI, cliEnv } from './index.js';

const run = promisify(execFile);
let counter = 0;

const quote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/**
 * Runs the CLI with `args` in a new tmux session of `columns` x `rows`, under a shell that shows
 * its exit status (`[exit N]`) and then keeps the terminal open, so the last screen can be read.
 * The shell ignores Ctrl-C; the CLI (Node resets inherited dispositions) does not. `redirect` is
 * shell text appended to the command (`> file`); `prefix`, shell text before it (`TERM=dumb`: tmux
 * sets TERM in its panes itself).
 */
export async function inTmux(args, { columns = 100, rows = 30, env = {}, redirect = '', prefix = '' } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-tmux-'));
  const conf = path.join(dir, 'tmux.conf');
  writeFileSync(conf, 'set -g remain-on-exit on\nset -g status off\nset -g history-limit 2000\n');
  const socket = `tl-test-${process.pid}-${++counter}`;
  const tmuxEnv = cliEnv(env);
  const tmux = (...a) => run('tmux', ['-L', socket, ...a], { env: tmuxEnv });
  try {
    const command = `trap '' INT; ${prefix} ${[process.execPath, CLI, ...args].map(quote).join(' ')} ${redirect}; echo "[exit $?]"; exec sleep 86400`;
    await tmux('-f', conf, 'new-session', '-d', '-x', String(columns), '-y', String(rows), 'sh', '-c', command);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    if (err.code === 'ENOENT') assert.fail('tmux not found: install the Debian package tmux');
    throw err;
  }
  const format = async (f) => (await tmux('display-message', '-p', f)).stdout.trim();
  const shell = Number(await format('#{pane_pid}'));
  const tty = await format('#{pane_tty}');
  const socketPath = await format('#{socket_path}');

  /** The visible screen, one string per row, trailing blanks cut. */
  async function screen() {
    const text = (await tmux('capture-pane', '-p')).stdout;
    assert.ok(!text.includes(CANARY_KEY) && !text.includes(CANARY_KEY.slice(10)), `the API key leaked onto the terminal:\n${text}`);
    return text.split('\n').map((l) => l.trimEnd());
  }

  /** The scrollback and the screen, one string per row (joined where the terminal wrapped them). */
  async function history() {
    const text = (await tmux('capture-pane', '-p', '-J', '-S', '-')).stdout;
    assert.ok(!text.includes(CANARY_KEY), 'the API key leaked onto the terminal');
    return text.split('\n').map((l) => l.trimEnd());
  }

  /** Polls the screen until `predicate(lines)` holds; returns the lines. */
  async function waitForScreen(predicate, what, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    let lines = [];
    while (Date.now() < deadline) {
      lines = await screen();
      if (predicate(lines)) return lines;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}; screen:\n${lines.join('\n')}`);
  }

  /** Waits until the CLI has exited; returns its exit status (128 + N after signal N). */
  async function exitStatus(timeoutMs = 15_000) {
    const lines = await waitForScreen((l) => l.some((x) => /^\[exit \d+\]$/.test(x)), 'the CLI to exit', timeoutMs);
    return Number(/^\[exit (\d+)\]$/.exec(lines.find((x) => /^\[exit \d+\]$/.test(x)))[1]);
  }

  /** The CLI's process id: the shell's child (from /proc on Linux, pgrep elsewhere). */
  function cliPid() {
    const children = `/proc/${shell}/task/${shell}/children`;
    const list = existsSync(children) ? readFileSync(children, 'utf8') : execFileSync('pgrep', ['-P', String(shell)], { encoding: 'utf8' });
    return Number(list.trim().split(/\s+/)[0]);
  }

  return {
    cliPid,
    /** The shell that runs the CLI (Ctrl-Z stops it too). */
    shellPid: () => shell,
    tty,
    screen,
    waitForScreen,
    exitStatus,
    /** Types keys, in tmux's names (`C-c`). */
    keys: (...keys) => tmux('send-keys', ...keys),
    history,
    /** Resizes the window as a user would (tmux allows no fewer than 1 column). */
    resize: (columns) => tmux('resize-window', '-x', String(columns)),
    /** Sets the terminal's size directly, 0 columns included, as some terminals report. */
    setColumns: (columns) => run('stty', ['-F', tty, 'cols', String(columns)]),
    /** Closes the terminal: the process gets SIGHUP as when a terminal window is closed. */
    close: () => tmux('kill-server').catch(() => {}),
    async kill() {
      // A CLI stuck in a loop would ignore the SIGHUP of kill-server: end it by its id.
      let pid;
      try {
        pid = cliPid();
      } catch {
        // the shell is gone
      }
      await tmux('kill-server').catch(() => {});
      rmSync(socketPath, { force: true });
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The live status line on a screen ("2 open · 5 served · ↑ ..."), or undefined. */
export function statusLineOf(lines) {
  return lines.find((l) => /^\d+ open · /.test(l));
}

/** The last non-empty row of a screen. */
export function lastLine(lines) {
  return [...lines].reverse().find((l) => l !== '') ?? '';
}
