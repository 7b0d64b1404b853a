// A cloned repository cannot quietly redirect the user's key: a .tensorlake/config.toml in a
// directory another user owns or may write to is skipped with a warning (as git does since
// CVE-2022-24765), and when a project file chooses where the key goes while the key comes from
// elsewhere, one line (and a JSON event) says which host gets it and which file chose it.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CANARY_KEY, runCli, startServer } from './helpers/index.js';
import { untrustedProjectConfig } from '../dist/config/project-trust.js';

const dirs = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A project directory with .tensorlake/config.toml holding `toml`; returns the project directory. */
function project(toml) {
  const parent = mkdtempSync(path.join(tmpdir(), 'tl-trust-'));
  dirs.push(parent);
  chmodSync(parent, 0o755);
  const dir = path.join(parent, 'repo');
  mkdirSync(path.join(dir, '.tensorlake'), { recursive: true, mode: 0o755 });
  writeFileSync(path.join(dir, '.tensorlake', 'config.toml'), toml, { mode: 0o644 });
  return dir;
}

const asRoot = process.getuid?.() === 0;

test('a project config in a directory of another user, or one others may write to, is skipped with one warning', { skip: asRoot ? false : 'needs root to give a directory to another user' }, async () => {
  const server = await startServer({ sandboxes: [{ id: 'sbx1', name: 'db' }] });
  const lookups = [];
  server.on('control', (req) => lookups.push(req.url));
  try {
    for (const spoil of [(dir) => chownSync(dir, 65534, 65534), (dir) => chmodSync(dir, 0o777), (dir) => chmodSync(path.join(dir, '.tensorlake'), 0o775)]) {
      // The file would send the key to a host of its choosing; the lookup goes to our control plane.
      const dir = project('[tensorlake]\napi_url = "https://api.attacker.invalid"\napikey = "tl_apiKey_fromTheRepo000000"\n');
      spoil(dir);
      const r = await runCli(['-v', '--json', '--proxy-url', server.url, 'no-such-box', ':5999'], { cwd: dir, env: { TENSORLAKE_SANDBOX_API_URL: server.url } });
      assert.equal(r.code, 4, r.stderr);
      const warnings = r.stderr.split('\n').filter((l) => l.includes('Ignoring the project config'));
      assert.equal(warnings.length, 1, r.stderr);
      assert.match(warnings[0], /(belongs to another user \(uid 65534\)|can be written by other users \(mode 07[0-7]{2}\)), so it could send your key to any host/);
      assert.match(r.stderr, /API URL https:\/\/api\.tensorlake\.ai \(from default[;)]/, "the file was not read");
      assert.match(r.stderr, /Credentials from TENSORLAKE_API_KEY/);
    }
  } finally {
    await server.close();
  }
});

test('the decision itself: the file, its .tensorlake directory and the project directory must be ours and not writable by others', () => {
  const dir = project('');
  const file = path.join(dir, '.tensorlake', 'config.toml');
  assert.equal(untrustedProjectConfig(file), undefined);
  assert.equal(untrustedProjectConfig(file, 'win32'), undefined, 'no POSIX owners on Windows');
  assert.match(untrustedProjectConfig(file, 'linux', 12345), /belongs to another user/);
  chmodSync(file, 0o666);
  assert.match(untrustedProjectConfig(file), /config\.toml can be written by other users \(mode 0666\)/);
});

test('when a project file chooses where the key goes and the key comes from elsewhere, one line and a JSON event say so', async () => {
  // A localhost API URL is local development: the key goes to the local proxy, localhost:9443 by default.
  const dir = project('[tensorlake]\napi_url = "http://localhost:1"\n');
  const r = await runCli(['--json', '--connect-timeout', '1', 'sbx-x', ':5999'], { cwd: dir });
  const file = path.join(dir, '.tensorlake', 'config.toml');
  const lines = r.stderr.split('\n').filter((l) => l.includes('will be sent to'));
  assert.deepEqual(lines, [`warning Your key (from TENSORLAKE_API_KEY) will be sent to localhost:9443, because the API URL comes from ${file}`]);
  const event = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .find((e) => e.code === 'TL_WARN_KEY_DESTINATION');
  assert.deepEqual([event.event, event.host, event.file], ['warning', 'localhost:9443', file]);
  assert.ok(!r.stderr.includes(CANARY_KEY));
  // Said without -v, and not when the key comes from the same file or the user named the endpoint.
  const same = project('[tensorlake]\napi_url = "http://localhost:1"\napikey = "tl_apiKey_sameFile000000000"\n');
  const own = await runCli(['--connect-timeout', '1', 'sbx-x', ':5999'], { cwd: same, env: { TENSORLAKE_API_KEY: '' } });
  assert.doesNotMatch(own.stderr, /will be sent to/);
  const named = await runCli(['--connect-timeout', '1', '--proxy-url', 'http://127.0.0.1:1', 'sbx-x', ':5999'], { cwd: dir });
  assert.doesNotMatch(named.stderr, /will be sent to/);
});
