// `tl-tunnel completion bash|zsh|fish|powershell`: each script loads in its shell and completes
// options, option values (addresses, URLs, files) and the `completion` word; the option lists come
// from the parser. PowerShell (pwsh) is not packaged for Debian: its script is checked as text.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI, ROOT, cliEnv, eventually, runCli, startEcho, startServer, sandboxOf } from './helpers/index.js';
import { needsTools } from './helpers/services.js';

// The shells write into HOME (fish creates ~/.config/fish): give them one of their own, never the
// CLI's nonexistent one, which must stay nonexistent for the other tests.
const [bashSkip, zshSkip, fishSkip] = ['bash', 'zsh', 'fish'].map((shell) => needsTools(shell));
const shellHome = await mkdtemp(path.join(tmpdir(), 'tl-completion-home-'));
test.after(() => rm(shellHome, { recursive: true, force: true }));

function sh(cmd, args, { cwd, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: 20_000, env: { ...process.env, HOME: shellHome, TERM: 'dumb', ...env } }, (err, stdout, stderr) => {
      if (err?.code === 'ENOENT') reject(new Error(`${cmd} is not installed: apt-get install ${cmd}`));
      else if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function script(shell) {
  const r = await runCli(['completion', shell]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout;
}

async function withScript(shell, fn) {
  const dir = await mkdtemp(path.join(tmpdir(), `tl-completion-${shell}-`));
  try {
    const file = path.join(dir, `tl-tunnel.${shell}`);
    await writeFile(file, await script(shell));
    await writeFile(path.join(dir, 'cert.pem'), '');
    await fn(file, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every long option in --help. */
async function helpFlags(bin) {
  const r = await runCli(['--help'], { bin });
  // The Options section only: the examples below it quote other programs' flags (curl --socks5-hostname).
  const options = r.stdout.slice(r.stdout.indexOf('Options:')).split(/\n\S/)[0];
  return [...new Set(options.match(/--[a-z][a-z0-9-]*[a-z0-9]/g))].filter((f) => !options.includes(`${f}=`));
}

test('bash: registered for both commands; options, values, files and the completion word', { skip: bashSkip }, async () => {
  await withScript('bash', async (file, dir) => {
    // Runs the completion function as bash would for the line typed so far, one reply per line.
    const complete = async (line, fn = '_tl_tunnel') =>
      (await sh('bash', ['-c', `source ${JSON.stringify(file)}; COMP_LINE=$1; COMP_POINT=\${#COMP_LINE}; ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', line], { cwd: dir }))
        .split('\n')
        .filter(Boolean);
    const registered = await sh('bash', ['-c', `source ${JSON.stringify(file)}; complete -p tl-tunnel tl-tunnel-server`]);
    assert.match(registered, /complete -F _tl_tunnel tl-tunnel\n/);
    assert.match(registered, /complete -F _tl_tunnel_server tl-tunnel-server/);

    assert.deepEqual(await complete('tl-tunnel --prox'), ['--proxy-url', '--proxy', '--proxy-port']);
    assert.deepEqual(await complete('tl-tunnel --address '), ['127.0.0.1', '::1', '0.0.0.0', '::']);
    // bash replaces only the part after the last ':' of the word being completed.
    assert.deepEqual(await complete('tl-tunnel --proxy-url http://127'), ['//127.0.0.1:9443']);
    assert.deepEqual(await complete('tl-tunnel --api-key '), [], 'a key is never guessed');
    assert.deepEqual(await complete('tl-tunnel comp'), ['completion']);
    assert.deepEqual(await complete('tl-tunnel completion '), ['bash', 'zsh', 'fish', 'powershell']);
    assert.deepEqual(await complete('tl-tunnel '), ['completion', 'ps', 'stop', 'logs']);
    assert.deepEqual(await complete('tl-tunnel stop --'), ['--all', '--json']);
    assert.deepEqual(await complete('tl-tunnel logs -'), ['-f', '--follow']);
    assert.deepEqual(await complete('tl-tunnel sbx-1 '), [], 'a port spec is not guessed either');
    assert.deepEqual(await complete('tl-tunnel-server --cert ce', '_tl_tunnel_server'), ['cert.pem']);
    const all = await complete('tl-tunnel -');
    for (const flag of await helpFlags(CLI)) assert.ok(all.includes(flag), `${flag} (from --help) completes`);
  });
});

test('zsh: the script parses, registers both commands (sourced or autoloaded) and completes in an interactive zsh', { skip: zshSkip }, async () => {
  await withScript('zsh', async (file, dir) => {
    await sh('zsh', ['-n', file]);
    const out = await sh('zsh', ['-f', '-c', `autoload -U compinit; compinit -u -d ${dir}/zcompdump; source ${JSON.stringify(file)}; print -r -- $_comps[tl-tunnel] $_comps[tl-tunnel-server]; whence -f _tl_tunnel`]);
    assert.match(out, /^_tl_tunnel_dispatch _tl_tunnel_dispatch\n/);
    // Installed as the README says, as an autoloaded file: compinit reads its #compdef line.
    const { mkdir, copyFile } = await import('node:fs/promises');
    await mkdir(path.join(dir, 'zfunc'));
    await copyFile(file, path.join(dir, 'zfunc', '_tl-tunnel'));
    const autoloaded = await sh('zsh', ['-f', '-c', `fpath=(${dir}/zfunc $fpath); autoload -U compinit; compinit -u -d ${dir}/zcompdump2; print -r -- $_comps[tl-tunnel] $_comps[tl-tunnel-server]`]);
    assert.equal(autoloaded, '_tl-tunnel _tl-tunnel\n');
    // Completion for real, in an interactive zsh: what the widget offers after each line typed.
    const complete = async (line) => (await sh('zsh', ['-f', path.join(ROOT, 'test', 'helpers', 'zsh-complete.zsh'), file, line], { cwd: dir })).trim().split('|');
    assert.deepEqual(await complete('tl-tunnel --prox'), ['--proxy-url', '--proxy', '--proxy-port']);
    assert.deepEqual(await complete('tl-tunnel --address '), ['127.0.0.1', '::1', '0.0.0.0', '::']);
    assert.deepEqual(await complete('tl-tunnel comp'), ['completion']);
    assert.deepEqual(await complete('tl-tunnel completion '), ['bash', 'zsh', 'fish', 'powershell']);
    assert.ok((await complete('tl-tunnel-server --cert ')).includes('cert.pem'));
    for (const spec of ["'--proxy-url[", "'--address[", "(127.0.0.1 \\:\\:1 0.0.0.0 \\:\\:)", 'compadd -- bash zsh fish powershell']) assert.ok(out.includes(spec), `${spec} in:\n${out}`);
  });
});

test('fish: the script parses; complete -C offers options, values and the completion word', { skip: fishSkip }, async () => {
  await withScript('fish', async (file, dir) => {
    await sh('fish', ['--no-execute', file]);
    const complete = async (line) =>
      (await sh('fish', ['--no-config', '-c', `source ${JSON.stringify(file)}; complete -C${JSON.stringify(line)}`], { cwd: dir }))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0])
        .sort();
    assert.deepEqual(await complete('tl-tunnel --prox'), ['--proxy', '--proxy-port', '--proxy-url']);
    assert.deepEqual(await complete('tl-tunnel --address '), ['0.0.0.0', '127.0.0.1', '::', '::1']);
    assert.deepEqual(await complete('tl-tunnel comp'), ['completion']);
    assert.deepEqual(await complete('tl-tunnel completion '), ['bash', 'fish', 'powershell', 'zsh']);
    assert.deepEqual(await complete('tl-tunnel '), ['completion', 'logs', 'ps', 'stop']);
    assert.deepEqual(await complete('tl-tunnel-server --cert ce'), ['cert.pem']);
    // Installed as `completion --help` says (fish loads a file by command name, on demand), both
    // commands complete in a fresh shell without sourcing anything.
    const { stdout: help } = await runCli(['completion', '--help']);
    const install = help.split('\n').filter((l) => /^  (tl-tunnel completion fish|ln -sf)/.test(l)).map((l) => l.trim().replaceAll('~/.config/fish/completions', `${dir}/completions`));
    assert.equal(install.length, 2, help);
    // fish autoloads only for commands on PATH: stand-ins for the two commands.
    const bin = `${dir}/bin`;
    await sh('bash', ['-c', `mkdir -p ${dir}/completions ${bin} && for c in tl-tunnel tl-tunnel-server; do printf '#!/bin/sh\\n' > ${bin}/$c; chmod +x ${bin}/$c; done && ${install.join(' && ').replace('tl-tunnel completion', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} completion`)}`], { cwd: dir });
    const fresh = async (line) =>
      (await sh('fish', ['--no-config', '-c', `set -p fish_complete_path ${JSON.stringify(`${dir}/completions`)}; complete -C${JSON.stringify(line)}`], { cwd: dir, env: { PATH: `${bin}:${process.env.PATH}` } }))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0])
        .sort();
    assert.ok((await fresh('tl-tunnel-server --')).includes('--sandboxes'));
    assert.ok((await fresh('tl-tunnel --')).includes('--proxy-url'));
  });
});

test('completion takes bash, zsh, fish or powershell; a sandbox named "completion" still forwards', async () => {
  const bad = await runCli(['completion', 'tcsh']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^error No completion for "tcsh": use tl-tunnel completion bash, zsh, fish or powershell\n$/);
  // Followed by a port spec, "completion" is a sandbox name like any other.
  const echo = await startEcho();
  const server = await startServer();
  const sandboxes = [];
  server.on('request', (req) => sandboxes.push(sandboxOf(req.headers)));
  // The proxy given after the spec, so that `completion` stays the first word.
  const child = spawn(process.execPath, [CLI, 'completion', `:${echo.port}`, '--proxy-url', server.url], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  try {
    await eventually(() => /Forwarding 127\.0\.0\.1:\d+ -> completion:/.test(stderr), { timeoutMs: 15_000, what: `Forwarding in:\n${stderr}` });
    assert.ok(sandboxes.length > 0 && sandboxes.every((s) => s === 'completion'), sandboxes.join());
  } finally {
    child.kill('SIGINT');
    await once(child, 'close');
    await server.close();
    await echo.close();
  }
});

/** The text outside PowerShell's single-quoted strings (where '' is a quote), or throws on an open one. */
function outsideQuotes(text) {
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] !== "'") {
      out += text[i];
      continue;
    }
    const end = /^'(?:[^']|'')*'/.exec(text.slice(i));
    assert.ok(end, `an unterminated string at: ${text.slice(i, i + 60)}`);
    out += "''";
    i += end[0].length - 1;
  }
  return out;
}

test('powershell: one native completer for both commands, with every option of --help, checked as text', async () => {
  const out = await script('powershell');
  assert.match(out, /^Register-ArgumentCompleter -Native -CommandName tl-tunnel,tl-tunnel-server -ScriptBlock \{$/m);
  const code = outsideQuotes(out.split('\n').filter((l) => !l.startsWith('#')).join('\n'));
  for (const [open, close] of [['{', '}'], ['(', ')'], ['[', ']']]) {
    assert.equal(code.split(open).length, code.split(close).length, `unbalanced ${open}${close}`);
  }
  // Each command's table holds each of its --help options once, with its description.
  const tables = out.split(/^  '(tl-tunnel(?:-server)?)' = @\{$/m);
  for (const [name, bin] of [['tl-tunnel', CLI], ['tl-tunnel-server', path.join(ROOT, 'bin', 'tl-tunnel-server.js')]]) {
    const table = tables[tables.indexOf(name) + 1];
    for (const flag of await helpFlags(bin)) assert.equal(table.split(`@{ Name = '${flag}'; Tip = '`).length, 2, `${name} ${flag}`);
  }
  assert.match(out, /@\{ Name = '--address'; Values = @\('127\.0\.0\.1', '::1', '0\.0\.0\.0', '::'\) \}/);
  // A path: no values of our own, so PowerShell completes file names.
  assert.match(out, /@\{ Name = '--cert'; Values = \$null \}/);
  assert.match(out, /'stop' = @\('--all', '--json'\)/);
  assert.match(out, /& \$offer @\('bash', 'zsh', 'fish', 'powershell'\)/);
  // -d detaches, -D takes a port: options match case-sensitively (PowerShell's -eq does not).
  assert.match(out, /-ceq \$prev/);
  assert.ok(!/[^\x09\x0a\x20-\x7e]/.test(out), 'ASCII only: Windows PowerShell 5 reads a profile without a BOM as ANSI');
});
