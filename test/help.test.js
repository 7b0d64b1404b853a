// --help fits 80 columns wherever it is shown; its scripting example works as written (real bash
// and jq); --stdio never gets JSON on stdout, which carries the tunnel's bytes.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEcho, startServer, runCli, cliEnv, CLI, ROOT, echoRoundTrip, freePort, startCli } from './helpers/index.js';
import { needsTools } from './helpers/services.js';
import { inTmux } from './helpers/tmux.js';

const tooWide = (text) => text.split('\n').filter((l) => l.length > 80);

test('--help: no line over 80 columns, piped or on a 200-column terminal', async () => {
  const piped = await runCli(['--help']);
  assert.equal(piped.code, 0);
  assert.match(piped.stdout, /--no-status/);
  assert.deepEqual(tooWide(piped.stdout), []);

  const term = await inTmux(['--help'], { columns: 200, rows: 200 });
  try {
    assert.equal(await term.exitStatus(), 0);
    const lines = await term.screen();
    assert.ok(lines.some((l) => l.startsWith('Usage: tl-tunnel')), lines.join('\n'));
    assert.deepEqual(lines.filter((l) => l.length > 80), []);
  } finally {
    await term.kill();
  }
});

/**
 * Runs a scripting example (bash lines) against the reference server, psql standing for any client
 * (a round trip with bash's /dev/tcp), and checks it leaves nothing running.
 */
async function runScriptingExample(commands) {
  const example = commands
    .map((c) => (c.startsWith('psql ') ? 'exec 3<>"/dev/tcp/127.0.0.1/$port"; echo through-the-example >&3; read -r reply <&3; echo "reply=$reply"' : c))
    .join('\n');
  assert.match(example, /trap 'tl-tunnel stop (sbx-123|"\$id")' EXIT/);
  const echo = await startEcho();
  const server = await startServer({ sandboxes: [{ id: 'sbx-123' }] });
  const bin = mkdtempSync(path.join(tmpdir(), 'tl-bin-'));
  writeFileSync(path.join(bin, 'tl-tunnel'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(path.join(bin, 'tl-tunnel'), 0o755);
  const script = `set -e\n${example.replace('sbx-123 :5432', `sbx-123 :${echo.port}`)}\n`;
  // Its own process group, so anything left behind can be found and stopped at the end.
  const shell = spawn('bash', ['-c', script], {
    env: cliEnv({ PATH: `${bin}:${process.env.PATH}`, TENSORLAKE_SANDBOX_API_URL: server.url }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  shell.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  shell.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const closed = new Promise((resolve) => shell.on('close', resolve));
  try {
    assert.equal(await closed, 0, err);
    assert.match(out, /^reply=through-the-example$/m);
    // The trap stopped the tunnel as the script ended.
    assert.match(err, /Stopped/);
    assert.deepEqual(JSON.parse((await runCli(['ps', '--json'])).stdout), [], 'nothing left running');
  } finally {
    try {
      process.kill(-shell.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await closed;
    await server.close();
    await echo.close();
    rmSync(bin, { recursive: true, force: true });
  }
}

const scripting = { skip: process.platform === 'win32' ? 'runs a POSIX shell script' : needsTools('bash', 'jq') };

test('the --help scripting example works as written and leaves nothing running (bash, jq)', scripting, async () => {
  const { stdout: help } = await runCli(['--help']);
  const lines = help.split('\n');
  const at = lines.findIndex((l) => l.startsWith('  $ out=$(tl-tunnel --detach'));
  assert.ok(at > 0, help);
  const commands = [];
  for (const line of lines.slice(at)) {
    if (!line.startsWith('  $ ')) break;
    commands.push(line.slice(4).replace(/ +# .*$/, ''));
  }
  await runScriptingExample(commands);
});

test("the README's script pattern works as written and leaves nothing running (bash, jq)", scripting, async () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /### Scripts[\s\S]*?```sh\n([\s\S]*?)\n```/.exec(readme);
  assert.ok(block, 'the README has a Scripts block');
  await runScriptingExample(block[1].split('\n'));
});

test('--stdio with --json: refused on stderr, stdout stays empty (it carries the data)', async () => {
  for (const args of [['--stdio', '--json', 'sbx-1', '22'], ['--json', '--stdio', 'sbx-1'], ['--stdio', '--json', 'sbx-1', '22', '23']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(r.stderr, /^error /);
  }
});

test('--help fits one screen (57 lines of at most 80 columns) and shows every usage form', async () => {
  const { stdout } = await runCli(['--help']);
  const lines = stdout.trimEnd().split('\n');
  assert.ok(lines.length <= 57, `${lines.length} lines:\n${stdout}`);
  for (const form of ['-D [address:]port', '--stdio <sandbox> <port>', 'ps | stop <tunnel> | logs', 'completion ', 'help [command]']) assert.ok(stdout.includes(form), form);
  assert.match(stdout, /docs\//);
});

test('tl-tunnel help [command] and completion --help: the help, exit 0; an unknown command is exit 2; help 5432 is still a sandbox', async () => {
  const main = await runCli(['help']);
  assert.equal(main.code, 0);
  assert.equal(main.stdout, (await runCli(['--help'])).stdout);
  const ps = await runCli(['help', 'ps']);
  assert.equal(ps.code, 0);
  assert.match(ps.stdout, /^Usage: tl-tunnel ps/);
  for (const args of [['help', 'completion'], ['completion', '--help'], ['completion', '-h']]) {
    const r = await runCli(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.stdout, /^Usage: tl-tunnel completion bash\|zsh\|fish\|powershell/);
  }
  const bare = await runCli(['completion']);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /^error Missing the shell/);
  const unknown = await runCli(['help', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^error No command "nope".*completion, ps, stop, logs/);
  // A sandbox named help: `help 5432` forwards (here to a proxy that refuses: exit 6, no help text).
  const sandbox = await runCli(['--proxy-url', 'http://127.0.0.1:9', 'help', '5432']);
  assert.equal(sandbox.code, 6, sandbox.stderr);
  assert.equal(sandbox.stdout, '');
});

test("ssh's forms: -L 5432:localhost:5432 and 5432:localhost:5432 forward as 5432:5432; another host is refused", async () => {
  const echo = await startEcho();
  const server = await startServer();
  try {
    const local = await freePort();
    const cli = await startCli(['--proxy-url', server.url, 'sbx-1', '-L', `${local}:localhost:${echo.port}`]);
    try {
      const data = Buffer.from('through the ssh form');
      assert.deepEqual(await echoRoundTrip(local, data), data);
      assert.equal(cli.events.find((e) => e.event === 'listening').remotePort, echo.port);
    } finally {
      assert.equal((await cli.stop()).code, 0);
    }
    const other = await runCli(['--proxy-url', server.url, 'sbx-1', `${local}:db.internal:5432`]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /host can only be localhost or 127\.0\.0\.1 \(not "db\.internal"\)/);
  } finally {
    await server.close();
    await echo.close();
  }
});
