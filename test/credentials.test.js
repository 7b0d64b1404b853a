// Where the token comes from (flag > env > tl login file; an API key over a PAT at each level), the
// headers the reference server receives, and the warnings about the credentials file.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEcho, startServer, startCli, runCli, randomBytes, sandboxOf } from './helpers/index.js';

const secret = (prefix) => `${prefix}_${randomBytes(12).toString('hex')}`;
const KEY_FLAG = secret('tl_apiKey_flag');
const KEY_ENV = secret('tl_apiKey_env');
const PAT_FLAG = secret('tl_pat_flag');
const PAT_ENV = secret('tl_pat_env');
const FILE_TOKEN = secret('tl_pat_file');
const OTHER_TOKEN = secret('tl_pat_other');
const LEGACY_TOKEN = secret('tl_pat_legacy');
const ALL = [KEY_FLAG, KEY_ENV, PAT_FLAG, PAT_ENV, FILE_TOKEN, OTHER_TOKEN, LEGACY_TOKEN];

/** A temporary HOME, with ~/.config/tensorlake/credentials.toml holding `toml` (mode 0600) when given. */
async function home(t, toml, mode = 0o600) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tl-home-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, '.config', 'tensorlake', 'credentials.toml');
  if (toml !== undefined) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, toml);
    await chmod(file, mode);
  }
  return { dir, file };
}

/** No TENSORLAKE_* from the test environment unless given. */
function env(dir, extra = {}) {
  return { HOME: dir, USERPROFILE: dir, TENSORLAKE_API_KEY: '', TENSORLAKE_API_URL: '', ...extra };
}

function assertNoSecrets(text) {
  for (const s of ALL) assert.ok(!text.includes(s), `a token leaked:\n${text}`);
}

/**
 * Runs the CLI against a reference server whose token is `expected` and returns the headers of the
 * startup check as the server received them, plus the CLI's stderr.
 */
async function headersFor(expected, args, cliEnv) {
  const echo = await startEcho();
  const server = await startServer({ token: expected });
  const seen = [];
  server.on('request', (req) => seen.push(req.headers));
  try {
    const cli = await startCli(['-v', '--proxy-url', server.url, 'sbx-cred', `:${echo.port}`, ...args], { env: cliEnv });
    const r = await cli.stop();
    assert.equal(r.code, 0, r.stderr);
    assertNoSecrets(r.stderr + r.stdout);
    assert.ok(seen.length >= 1);
    return { headers: seen[0], stderr: r.stderr, events: r.events };
  } finally {
    await server.close();
    await echo.close();
  }
}

// A personal access token reaches a project only with an organization and a project.
const SCOPE = { TENSORLAKE_ORGANIZATION_ID: 'org-env', TENSORLAKE_PROJECT_ID: 'proj-env' };

const TABLE = (token, extra = '') => `["https://api.tensorlake.ai"]\ntoken = "${token}"\n${extra}`;

test('--api-key wins over everything else', async (t) => {
  const { dir } = await home(t, TABLE(FILE_TOKEN));
  const r = await headersFor(KEY_FLAG, ['--api-key', KEY_FLAG, '--pat', PAT_FLAG], env(dir, { TENSORLAKE_API_KEY: KEY_ENV, TENSORLAKE_PAT: PAT_ENV }));
  assert.equal(r.headers.authorization, `Bearer ${KEY_FLAG}`);
  assert.match(r.stderr, /^Credentials from --api-key$/m);
});

// As tl resolves them: an API key from any source beats a personal access token from any source.
test('TENSORLAKE_API_KEY (the environment) wins over --pat (a flag)', async (t) => {
  const { dir } = await home(t);
  const r = await headersFor(KEY_ENV, ['--pat', PAT_FLAG], env(dir, { TENSORLAKE_API_KEY: KEY_ENV, TENSORLAKE_PAT: PAT_ENV }));
  assert.equal(r.headers.authorization, `Bearer ${KEY_ENV}`);
  assert.match(r.stderr, /^Credentials from TENSORLAKE_API_KEY$/m);
});

test('--pat (a flag) wins over TENSORLAKE_PAT (the environment)', async (t) => {
  const { dir } = await home(t);
  const r = await headersFor(PAT_FLAG, ['--pat', PAT_FLAG], env(dir, { TENSORLAKE_PAT: PAT_ENV, ...SCOPE }));
  assert.equal(r.headers.authorization, `Bearer ${PAT_FLAG}`);
  assert.match(r.stderr, /^Credentials from --pat$/m);
});

test('TENSORLAKE_API_KEY wins over TENSORLAKE_PAT and the file', async (t) => {
  const { dir } = await home(t, TABLE(FILE_TOKEN));
  const r = await headersFor(KEY_ENV, [], env(dir, { TENSORLAKE_API_KEY: KEY_ENV, TENSORLAKE_PAT: PAT_ENV }));
  assert.equal(r.headers.authorization, `Bearer ${KEY_ENV}`);
  assert.match(r.stderr, /^Credentials from TENSORLAKE_API_KEY$/m);
});

test('TENSORLAKE_PAT wins over the file and sends the organization and project headers', async (t) => {
  const { dir } = await home(t, TABLE(FILE_TOKEN, 'organization = "org-file"\nproject = "proj-file"\n'));
  const r = await headersFor(PAT_ENV, [], env(dir, { TENSORLAKE_PAT: PAT_ENV, TENSORLAKE_ORGANIZATION_ID: 'org-env', TENSORLAKE_PROJECT_ID: 'proj-env' }));
  assert.equal(r.headers.authorization, `Bearer ${PAT_ENV}`);
  assert.equal(r.headers['x-forwarded-organization-id'], 'org-env');
  assert.equal(r.headers['x-forwarded-project-id'], 'proj-env');
  assert.equal(sandboxOf(r.headers), 'sbx-cred');
  assert.match(r.stderr, /^Credentials from TENSORLAKE_PAT$/m);
});

test('the tl login file: the table of the default API URL, with its organization and project', async (t) => {
  const toml = `${TABLE(FILE_TOKEN, 'organization = "org-file"\nproject = "proj-file"\n')}\n["https://api.staging.example"]\ntoken = "${OTHER_TOKEN}"\n`;
  const { dir, file } = await home(t, toml);
  const r = await headersFor(FILE_TOKEN, [], env(dir));
  assert.equal(r.headers.authorization, `Bearer ${FILE_TOKEN}`);
  assert.equal(r.headers['x-forwarded-organization-id'], 'org-file');
  assert.equal(r.headers['x-forwarded-project-id'], 'proj-file');
  assert.ok(r.stderr.includes(`Credentials from ${file}`), r.stderr);
  assert.doesNotMatch(r.stderr, /warning/);
});

test('TENSORLAKE_API_URL picks its table, compared without case or trailing slash; env ids override the file', async (t) => {
  const toml = `${TABLE(FILE_TOKEN)}\n["https://API.Staging.example/"]\ntoken = "${OTHER_TOKEN}"\norganization = "org-staging"\nproject = "proj-staging"\n`;
  const { dir } = await home(t, toml);
  const r = await headersFor(OTHER_TOKEN, [], env(dir, { TENSORLAKE_API_URL: 'https://api.staging.example', TENSORLAKE_PROJECT_ID: 'proj-env' }));
  assert.equal(r.headers.authorization, `Bearer ${OTHER_TOKEN}`);
  assert.equal(r.headers['x-forwarded-organization-id'], 'org-staging');
  assert.equal(r.headers['x-forwarded-project-id'], 'proj-env');
});

test('the legacy top-level token is used when no table matches', async (t) => {
  const toml = `token = "${LEGACY_TOKEN}"\n\n["https://api.staging.example"]\ntoken = "${OTHER_TOKEN}"\n`;
  const { dir } = await home(t, toml);
  const r = await headersFor(LEGACY_TOKEN, [], env(dir, SCOPE));
  assert.equal(r.headers.authorization, `Bearer ${LEGACY_TOKEN}`);
  assert.equal(r.headers['x-forwarded-organization-id'], 'org-env');
});

test('a credentials file readable by others is used, with a warning naming chmod 600', { skip: process.platform === 'win32' }, async (t) => {
  const { dir, file } = await home(t, TABLE(FILE_TOKEN), 0o644);
  const r = await headersFor(FILE_TOKEN, [], env(dir, SCOPE));
  assert.equal(r.headers.authorization, `Bearer ${FILE_TOKEN}`);
  assert.ok(r.stderr.includes(`warning ${file} is readable by other users: run chmod 600 ${file}`), r.stderr);
  const warning = r.events.find((e) => e.event === 'warning');
  assert.equal(warning?.code, 'TL_WARN_CREDENTIALS');
});

test('no credentials anywhere: exit 2 naming every source', async (t) => {
  const { dir } = await home(t);
  const r = await runCli(['sbx-cred', '5432'], { env: env(dir) });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /TENSORLAKE_API_KEY/);
  assert.match(r.stderr, /--api-key/);
  assert.match(r.stderr, /tl login/);
});

test('a file that is not valid TOML is ignored with a warning that does not quote it', async (t) => {
  const { dir, file } = await home(t, `token = "${FILE_TOKEN}\n[[[broken`);
  const r = await runCli(['sbx-cred', '5432'], { env: env(dir) });
  assert.equal(r.code, 2, r.stderr);
  assert.ok(r.stderr.includes(`${file} is not valid TOML`), r.stderr);
  assertNoSecrets(r.stderr + r.stdout);
});
