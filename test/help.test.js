// --help fits 80 columns wherever it is shown; its scripting example works as written (real bash
// and jq); --stdio never gets JSON on stdout, which carries the tunnel's bytes.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEcho, startServer, runCli, cliEnv, CLI } from './helpers/index.js';
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

test('the --help scripting example works as written and leaves nothing running (bash, jq)', { skip: process.platform === 'win32' ? 'runs a POSIX shell script' : needsTools('bash', 'jq') }, async () => {
  for (const tool of ['bash', 'jq']) assert.ok(['/usr/bin', '/bin', '/usr/local/bin'].some((d) => existsSync(path.join(d, tool))), `${tool} not found: install the Debian package ${tool}`);
  const { stdout: help } = await runCli(['--help']);
  const lines = help.split('\n');
  const at = lines.findIndex((l) => l.startsWith('  $ out=$(tl-tunnel --detach'));
  assert.ok(at > 0, help);
  const commands = [];
  for (const line of lines.slice(at)) {
    if (!line.startsWith('  $ ')) break;
    commands.push(line.slice(4).replace(/ +# .*$/, ''));
  }
  // psql stands for any client: here a round trip through the tunnel with bash's /dev/tcp.
  const example = commands
    .map((c) => (c.startsWith('psql ') ? 'exec 3<>"/dev/tcp/127.0.0.1/$port"; echo through-the-example >&3; read -r reply <&3; echo "reply=$reply"' : c))
    .join('\n');
  assert.match(example, /tl-tunnel stop sbx-123/);

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
    assert.match(err, /No tunnels running/);
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
});

test('--stdio with --json: refused on stderr, stdout stays empty (it carries the data)', async () => {
  for (const args of [['--stdio', '--json', 'sbx-1', '22'], ['--json', '--stdio', 'sbx-1'], ['--stdio', '--json', 'sbx-1', '22', '23']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(r.stderr, /^error /);
  }
});
