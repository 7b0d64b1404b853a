// Every row of the credentials table, as Tensorlake's `tl` resolves it: real files in a temporary HOME
// and a temporary project, the built CLI run from a subfolder of that project. A stand-in proxy
// records the upgrade's headers and answers 401, so each run ends at once (exit 3).
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, mkdir, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, listen, randomBytes } from './helpers/index.js';

const secret = (prefix) => `${prefix}_${randomBytes(12).toString('hex')}`;
const S = {
  keyFlag: secret('tl_apiKey_flag'),
  keyEnv: secret('tl_apiKey_env'),
  keyLocal: secret('tl_apiKey_local'),
  keyGlobal: secret('tl_apiKey_global'),
  patFlag: secret('tl_pat_flag'),
  patEnv: secret('tl_pat_env'),
  patStored: secret('tl_pat_stored'),
  patOther: secret('tl_pat_other'),
  patLegacy: secret('tl_pat_legacy'),
};
const SCOPE = { TENSORLAKE_ORGANIZATION_ID: 'org-env', TENSORLAKE_PROJECT_ID: 'proj-env' };

/** A temporary HOME and project; the CLI runs from <project>/src/deep. */
async function setup(t, { local, global, credentials } = {}) {
  const root = await mkdtemp(path.join(tmpdir(), 'tl-prec-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const home = path.join(root, 'home');
  const project = path.join(root, 'project');
  const cwd = path.join(project, 'src', 'deep');
  await mkdir(cwd, { recursive: true });
  await mkdir(path.join(home, '.config', 'tensorlake'), { recursive: true });
  const files = {
    local: path.join(project, '.tensorlake', 'config.toml'),
    global: path.join(home, '.config', 'tensorlake', '.tensorlake_config'),
    credentials: path.join(home, '.config', 'tensorlake', 'credentials.toml'),
  };
  if (local !== undefined) {
    await mkdir(path.dirname(files.local), { recursive: true });
    await writeFile(files.local, local);
  }
  if (global !== undefined) await writeFile(files.global, global);
  if (credentials !== undefined) {
    await writeFile(files.credentials, credentials);
    await chmod(files.credentials, 0o600);
  }
  return { home, cwd, files };
}

let proxy;
const seen = [];
test.before(async () => {
  const server = http.createServer();
  server.on('upgrade', (req, socket) => {
    seen.push(req.headers);
    const body = '{"error":"Missing or invalid bearer token","code":"UNAUTHORIZED"}';
    socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  });
  const port = await listen(server);
  proxy = { server, url: `http://127.0.0.1:${port}` };
});
test.after(() => proxy.server.close());

/** Runs the CLI with -v; returns the headers of its one upgrade (if any) and its output. */
async function probe(ctx, args = [], env = {}) {
  const before = seen.length;
  const r = await runCli(['-v', '--proxy-url', proxy.url, 'sbx-prec', '5432', ...args], {
    cwd: ctx.cwd,
    env: { HOME: ctx.home, USERPROFILE: ctx.home, TENSORLAKE_API_KEY: '', ...env },
    timeoutMs: 10_000,
  });
  const all = r.stdout + r.stderr;
  for (const value of Object.values(S)) assert.ok(!all.includes(value), `a token leaked:\n${all}`);
  return { ...r, headers: seen[before], sent: seen.length > before };
}

const bearer = (r) => r.headers?.authorization?.replace(/^Bearer /, '');
const table = (url, token, extra = '') => `["${url}"]\n${token === undefined ? '' : `token = "${token}"\n`}${extra}`;

test('API URL: --api-url, then TENSORLAKE_API_URL, then the project config, then the global config, then the default', async (t) => {
  const ctx = await setup(t, {
    local: '[tensorlake]\napi_url = "https://api.local.example"\n',
    global: '[tensorlake]\napi_url = "https://api.global.example"\n',
  });
  const key = { TENSORLAKE_API_KEY: S.keyEnv };
  const r1 = await probe(ctx, ['--api-url', 'https://api.flag.example/'], { ...key, TENSORLAKE_API_URL: 'https://api.env.example' });
  assert.match(r1.stderr, /^API URL https:\/\/api\.flag\.example \(from --api-url; not used: --proxy-url skips the lookup\)$/m);
  const r2 = await probe(ctx, [], { ...key, TENSORLAKE_API_URL: 'https://api.env.example' });
  assert.match(r2.stderr, /^API URL https:\/\/api\.env\.example \(from TENSORLAKE_API_URL;/m);
  const r3 = await probe(ctx, [], key);
  assert.ok(r3.stderr.includes(`API URL https://api.local.example (from ${ctx.files.local};`), r3.stderr);
  await rm(ctx.files.local);
  const r4 = await probe(ctx, [], key);
  assert.ok(r4.stderr.includes(`API URL https://api.global.example (from ${ctx.files.global};`), r4.stderr);
  await rm(ctx.files.global);
  const r5 = await probe(ctx, [], key);
  assert.match(r5.stderr, /^API URL https:\/\/api\.tensorlake\.ai \(from default;/m);
});

test('API key: --api-key, then TENSORLAKE_API_KEY, then apikey in the project config, then the global config; each beats any PAT', async (t) => {
  const ctx = await setup(t, {
    local: `[tensorlake]\napikey = "${S.keyLocal}"\n`,
    global: `[tensorlake]\napikey = "${S.keyGlobal}"\n`,
    credentials: table('https://api.tensorlake.ai', S.patStored),
  });
  const pats = { TENSORLAKE_PAT: S.patEnv };
  const r1 = await probe(ctx, ['--api-key', S.keyFlag, '--pat', S.patFlag], { ...pats, TENSORLAKE_API_KEY: S.keyEnv });
  assert.equal(bearer(r1), S.keyFlag);
  const r2 = await probe(ctx, ['--pat', S.patFlag], { ...pats, TENSORLAKE_API_KEY: S.keyEnv });
  assert.equal(bearer(r2), S.keyEnv);
  const r3 = await probe(ctx, ['--pat', S.patFlag], pats);
  assert.equal(bearer(r3), S.keyLocal);
  assert.ok(r3.stderr.includes(`Credentials from ${ctx.files.local}`), r3.stderr);
  await rm(ctx.files.local);
  const r4 = await probe(ctx, ['--pat', S.patFlag], pats);
  assert.equal(bearer(r4), S.keyGlobal);
  assert.ok(r4.stderr.includes(`Credentials from ${ctx.files.global}`), r4.stderr);
  // A refused key from a config file is blamed on that file.
  assert.ok(r4.stderr.includes(`the API key from ${ctx.files.global} was refused`), r4.stderr);
  assert.equal(r4.code, 3);
});

test('PAT: --pat, then TENSORLAKE_PAT, then the token tl login stored for the API URL', async (t) => {
  const ctx = await setup(t, { credentials: table('https://api.tensorlake.ai', S.patStored, 'organization = "org-stored"\nproject = "proj-stored"\n') });
  const r1 = await probe(ctx, ['--pat', S.patFlag], { TENSORLAKE_PAT: S.patEnv, ...SCOPE });
  assert.equal(bearer(r1), S.patFlag);
  const r2 = await probe(ctx, [], { TENSORLAKE_PAT: S.patEnv, ...SCOPE });
  assert.equal(bearer(r2), S.patEnv);
  assert.match(r2.stderr, /the access token from TENSORLAKE_PAT was refused: check TENSORLAKE_PAT/);
  const r3 = await probe(ctx);
  assert.equal(bearer(r3), S.patStored);
  // The stored token's own scope goes with it.
  assert.equal(r3.headers['x-forwarded-organization-id'], 'org-stored');
  assert.equal(r3.headers['x-forwarded-project-id'], 'proj-stored');
  // A refused stored token is blamed on the tl login file, not on TENSORLAKE_API_KEY.
  assert.ok(r3.stderr.includes(`the access token stored by tl login (${ctx.files.credentials}) was refused: run tl login again`), r3.stderr);
  assert.doesNotMatch(r3.stderr, /check TENSORLAKE_API_KEY/);
});

test('organization and project: flag, then env, then the stored scope (only for the stored token), then the project config', async (t) => {
  const ctx = await setup(t, {
    local: 'organization = "org-local"\nproject = "proj-local"\n',
    credentials: table('https://api.tensorlake.ai', S.patStored, 'organization = "org-stored"\nproject = "proj-stored"\n'),
  });
  const scope = (r) => [r.headers['x-forwarded-organization-id'], r.headers['x-forwarded-project-id']];
  const r1 = await probe(ctx, ['--organization', 'org-flag', '--project', 'proj-flag'], SCOPE);
  assert.deepEqual(scope(r1), ['org-flag', 'proj-flag']);
  assert.match(r1.stderr, /^Organization from --organization$/m);
  const r2 = await probe(ctx, [], SCOPE);
  assert.deepEqual(scope(r2), ['org-env', 'proj-env']);
  const r3 = await probe(ctx);
  assert.deepEqual(scope(r3), ['org-stored', 'proj-stored']);
  assert.ok(r3.stderr.includes(`Project from ${ctx.files.credentials}`), r3.stderr);
  // A PAT from the environment is another login: the stored scope is not its scope.
  const r4 = await probe(ctx, [], { TENSORLAKE_PAT: S.patEnv });
  assert.equal(bearer(r4), S.patEnv);
  assert.deepEqual(scope(r4), ['org-local', 'proj-local']);
  assert.ok(r4.stderr.includes(`Organization from ${ctx.files.local}`), r4.stderr);
});

test('with an API key no scope headers are sent, whatever env and files say, unless given by flag', async (t) => {
  const ctx = await setup(t, {
    local: 'organization = "org-local"\nproject = "proj-local"\n',
    credentials: table('https://api.tensorlake.ai', S.patStored, 'organization = "org-stored"\nproject = "proj-stored"\n'),
  });
  const r1 = await probe(ctx, [], { TENSORLAKE_API_KEY: S.keyEnv, ...SCOPE });
  assert.equal(bearer(r1), S.keyEnv);
  assert.equal(r1.headers['x-forwarded-organization-id'], undefined);
  assert.equal(r1.headers['x-forwarded-project-id'], undefined);
  const r2 = await probe(ctx, ['--organization', 'org-flag', '--project', 'proj-flag'], { TENSORLAKE_API_KEY: S.keyEnv });
  assert.equal(r2.headers['x-forwarded-organization-id'], 'org-flag');
  assert.equal(r2.headers['x-forwarded-project-id'], 'proj-flag');
});

test('a PAT without an organization and project: exit 2 naming where to set them, nothing sent', async (t) => {
  const ctx = await setup(t, { credentials: `token = "${S.patLegacy}"\n` });
  for (const [args, env] of [[['--pat', S.patFlag], {}], [[], {}], [[], { TENSORLAKE_ORGANIZATION_ID: 'org-only' }]]) {
    const r = await probe(ctx, args, env);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.sent, false);
    assert.match(r.stderr, /needs (an organization and )?a project: pass --organization and --project, set TENSORLAKE_ORGANIZATION_ID and TENSORLAKE_PROJECT_ID/);
  }
});

test('the tl login file: exact key, equivalent keys (default port, slashes, case of scheme and host), a table without token falls through, legacy last', async (t) => {
  const cases = [
    // [file, API URL, expected token]
    [table('https://api.tensorlake.ai', S.patStored), 'https://api.tensorlake.ai', S.patStored],
    [table('https://API.Tensorlake.ai:443/', S.patStored), 'https://api.tensorlake.ai', S.patStored],
    [table('https://api.tensorlake.ai', S.patStored), 'https://api.tensorlake.ai:443//', S.patStored],
    [`${table('https://api.tensorlake.ai', undefined, 'organization = "o"\n')}\n${table('https://api.tensorlake.ai/', S.patOther)}`, 'https://api.tensorlake.ai', S.patOther],
    [`token = "${S.patLegacy}"\n\n${table('https://api.other.example', S.patOther)}`, 'https://api.tensorlake.ai', S.patLegacy],
    [`token = "${S.patLegacy}"\n\n${table('https://api.example.com/Tenant', S.patOther)}`, 'https://api.example.com/tenant', S.patLegacy],
    [`token = "${S.patLegacy}"\n\n${table('https://api.example.com/Tenant', S.patOther)}`, 'https://api.example.com/Tenant/', S.patOther],
    [table('https://api.tensorlake.ai', `  ${S.patStored}  `), 'https://api.tensorlake.ai', S.patStored],
  ];
  for (const [file, apiUrl, expected] of cases) {
    const ctx = await setup(t, { credentials: file });
    const r = await probe(ctx, ['--api-url', apiUrl], SCOPE);
    assert.equal(bearer(r), expected, `${apiUrl} in\n${file.replaceAll(/tl_pat_\w+/g, '<token>')}`);
  }
});

test('values are trimmed wherever they come from', async (t) => {
  const ctx = await setup(t, { local: `[tensorlake]\napikey = "  ${S.keyLocal}\t"\napi_url = " https://api.local.example "\n` });
  const r1 = await probe(ctx);
  assert.equal(bearer(r1), S.keyLocal);
  assert.match(r1.stderr, /^API URL https:\/\/api\.local\.example \(from /m);
  const r2 = await probe(ctx, ['--organization', ' org-flag '], { TENSORLAKE_API_KEY: ` ${S.keyEnv}\n` });
  assert.equal(bearer(r2), S.keyEnv);
  assert.equal(r2.headers['x-forwarded-organization-id'], 'org-flag');
});

test('the project config is the nearest one above the current directory', async (t) => {
  const ctx = await setup(t, { local: `[tensorlake]\napikey = "${S.keyLocal}"\n` });
  const nearer = path.join(ctx.cwd, '..', '.tensorlake', 'config.toml');
  await mkdir(path.dirname(nearer), { recursive: true });
  await writeFile(nearer, `[tensorlake]\napikey = "${S.keyGlobal}"\n`);
  const r = await probe(ctx);
  assert.equal(bearer(r), S.keyGlobal);
  assert.ok(r.stderr.includes(`Credentials from ${nearer}`), r.stderr);
});
