// Config and credential files are read safely: only regular files of at most 1 MiB. A FIFO, a
// symlink to /dev/zero, a directory, a huge, unreadable or malformed file is one warning naming the
// file, never a hang, a crash or a memory blow-up, and the other sources still work.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, chmod, chown, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, randomBytes } from './helpers/index.js';

const KEY = `tl_apiKey_cfg_${randomBytes(12).toString('hex')}`;
const isRoot = process.getuid?.() === 0;

async function setup(t) {
  const root = await mkdtemp(path.join(tmpdir(), 'tl-cfg-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const home = path.join(root, 'home');
  const project = path.join(root, 'project');
  await mkdir(path.join(home, '.config', 'tensorlake'), { recursive: true });
  await mkdir(path.join(project, '.tensorlake'), { recursive: true });
  return {
    root,
    home,
    cwd: project,
    local: path.join(project, '.tensorlake', 'config.toml'),
    global: path.join(home, '.config', 'tensorlake', '.tensorlake_config'),
    credentials: path.join(home, '.config', 'tensorlake', 'credentials.toml'),
  };
}

/** Runs the CLI with no key from the environment: it must end by itself, quickly. */
function run(ctx, extra = {}) {
  return runCli(['--proxy-url', 'http://127.0.0.1:9', '--connect-timeout', '0.2', 'sbx-cfg', '5432'], {
    cwd: ctx.cwd,
    env: { HOME: ctx.home, USERPROFILE: ctx.home, TENSORLAKE_API_KEY: '' },
    timeoutMs: 10_000,
    ...extra,
  });
}

function assertWarned(r, file, pattern) {
  assert.notEqual(r.signal, 'SIGKILL', `the CLI hung:\n${r.stderr}`);
  const line = r.stderr.split('\n').find((l) => l.includes(file));
  assert.ok(line, `no warning names ${file}:\n${r.stderr}`);
  assert.match(line, /^warning /);
  assert.match(line, pattern);
  assert.ok(!r.stderr.includes(KEY));
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
}

test('a FIFO as credentials.toml does not block startup', { skip: process.platform === 'win32' }, async (t) => {
  const ctx = await setup(t);
  execFileSync('mkfifo', [ctx.credentials]);
  const r = await run(ctx);
  assertWarned(r, ctx.credentials, /is a FIFO, not a regular file/);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /No API key/);
});

test('a symlink to /dev/zero as the global config is refused at once', { skip: process.platform === 'win32' }, async (t) => {
  const ctx = await setup(t);
  await symlink('/dev/zero', ctx.global);
  await writeFile(ctx.local, `[tensorlake]\napikey = "${KEY}"\n`);
  const r = await run(ctx);
  assertWarned(r, ctx.global, /is a device, not a regular file/);
  // The project config still gives the key: the run goes on to the (unreachable) proxy.
  assert.equal(r.code, 6, r.stderr);
});

test('a directory where a config file should be', async (t) => {
  const ctx = await setup(t);
  await mkdir(ctx.local);
  await mkdir(ctx.credentials);
  const r = await run(ctx);
  assertWarned(r, ctx.local, /is a directory, not a regular file/);
  assertWarned(r, ctx.credentials, /is a directory/);
  assert.equal(r.code, 2);
});

test('a config file over 1 MiB is not read', async (t) => {
  const ctx = await setup(t);
  await writeFile(ctx.global, `[tensorlake]\napikey = "${KEY}"\n# ${'x'.repeat(1024 * 1024)}\n`);
  const r = await run(ctx);
  assertWarned(r, ctx.global, /is larger than 1 MiB/);
  assert.equal(r.code, 2);
});

test('a malformed config file is a warning that does not quote it', async (t) => {
  const ctx = await setup(t);
  await writeFile(ctx.local, `[tensorlake]\napikey = "${KEY}\n[[[`);
  await writeFile(ctx.global, `[tensorlake]\napikey = "${KEY}"\n`);
  const r = await run(ctx);
  assertWarned(r, ctx.local, /is not valid TOML/);
  assert.equal(r.code, 6, 'the global config still gives the key');
});

test('an unreadable config file is a warning naming the file', { skip: process.platform === 'win32' }, async (t) => {
  const ctx = await setup(t);
  await writeFile(ctx.local, `[tensorlake]\napikey = "${KEY}"\n`);
  await chmod(ctx.local, 0o000);
  // root reads anything: run as nobody, who can walk into the temporary folders but not read the file.
  for (const dir of [ctx.root, ctx.home, ctx.cwd, path.dirname(ctx.local)]) await chmod(dir, 0o755);
  // The project's files are the runner's own (a project config of another user is skipped unread).
  if (isRoot) for (const p of [ctx.cwd, path.dirname(ctx.local), ctx.local]) await chown(p, 65534, 65534);
  const r = await run(ctx, isRoot ? { uid: 65534 } : {});
  assertWarned(r, ctx.local, /cannot be read \(EACCES\)/);
  assert.equal(r.code, 2);
});
