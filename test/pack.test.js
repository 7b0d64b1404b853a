// The npm tarball: only what runs, installable with production dependencies alone, and working
// through npx, as `npx tl-tunnel` users get it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, startEcho, startServer, startCli, echoRoundTrip, randomBytes, sha256, cliEnv } from './helpers/index.js';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

function run(cmd, args, { cwd, timeoutMs = 120_000, env = cliEnv() } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, shell: process.platform === 'win32' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { message: `${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}` }));
      else resolve({ stdout, stderr });
    });
  });
}

test('npm pack ships only dist, bin, README, LICENSE; the tarball installs and runs through npx', { timeout: 240_000 }, async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'tl-pack-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));

  // prepack builds, so the tarball never holds a stale or missing dist/.
  const packed = await run(NPM, ['pack', '--json', '--pack-destination', work], { cwd: ROOT, env: process.env });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
  const files = info.files.map((f) => f.path.replace(/\\/g, '/'));
  const tops = new Set(files.map((f) => (f.includes('/') ? `${f.split('/')[0]}/` : f)));
  assert.deepEqual([...tops].sort(), ['LICENSE', 'README.md', 'bin/', 'dist/', 'package.json'], files.join('\n'));
  for (const needed of ['bin/tl-tunnel.js', 'bin/tl-tunnel-server.js', 'dist/cli.js', 'dist/index.js', 'dist/index.d.ts']) assert.ok(files.includes(needed), `${needed} is in the tarball`);
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no sources or tests');
  const tarball = path.join(work, info.filename);

  const app = path.join(work, 'app');
  await run(NPM, ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--prefix', app, tarball], { cwd: work, env: process.env });
  assert.ok(existsSync(path.join(app, 'node_modules', 'tl-tunnel', 'dist', 'cli.js')));
  assert.ok(!existsSync(path.join(app, 'node_modules', 'typescript')), 'no dev dependencies');

  const version = await run(NPX, ['--no', '--', 'tl-tunnel', '--version'], { cwd: app });
  assert.equal(version.stdout.trim(), pkg.version);
  const help = await run(NPX, ['--no', '--', 'tl-tunnel', '--help'], { cwd: app });
  for (const example of ['psql', 'redis-cli', 'Chrome DevTools', 'ProxyCommand tl-tunnel --stdio']) assert.ok(help.stdout.includes(example), `--help shows ${example}`);

  // A real forward with the installed bin.
  const echo = await startEcho();
  const server = await startServer();
  const bin = path.join(app, 'node_modules', 'tl-tunnel', 'bin', 'tl-tunnel.js');
  const cli = await startCli(['--proxy-url', server.url, 'sbx-npx', `:${echo.port}`], { bin });
  try {
    const data = randomBytes(100_000);
    assert.equal(sha256(await echoRoundTrip(cli.port, data)), sha256(data));
  } finally {
    const r = await cli.stop();
    await server.close();
    await echo.close();
    assert.equal(r.code, 0, r.stderr);
  }
});
