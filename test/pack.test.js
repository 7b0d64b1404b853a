// The npm tarball as a new user gets it: publish-ready (`npm publish --dry-run` clean), only what
// runs, installed from the tarball into an empty prefix with an empty npm cache (production
// dependencies come from the registry, as they would for `npx tl-tunnel`), with no build step, and
// working: --version, --help, and a real forward through the installed tl-tunnel-server.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CANARY_KEY, ROOT, startEcho, startCli, echoRoundTrip, randomBytes, sha256, cliEnv, eventually } from './helpers/index.js';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

function run(cmd, args, { cwd, timeoutMs = 180_000, env = cliEnv() } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, shell: process.platform === 'win32' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { message: `${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}` }));
      else resolve({ stdout, stderr });
    });
  });
}

const json = (text) => JSON.parse(text.slice(text.search(/[[{]/)));

test('publish-ready; the tarball holds only what runs; it installs from an empty cache and works, also through npx; npm install -g . from the clone', { timeout: 300_000 }, async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'tl-pack-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  for (const field of ['repository', 'homepage', 'bugs', 'license', 'engines']) assert.ok(pkg[field], `package.json has ${field}`);
  // npm's own cache and logs go to the scratch folder: nothing of the user's is read or written.
  const npmEnv = { ...process.env, npm_config_cache: path.join(work, 'cache'), npm_config_update_notifier: 'false' };

  // Without scripts: prepack would rebuild dist/ while other test files run the CLI from it (npm test
  // has just built it, and a published tarball is built by prepack).
  const dry = await run(NPM, ['publish', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, env: npmEnv });
  const warnings = dry.stderr.split('\n').filter((l) => /^npm (warn|error)/i.test(l) && !/requires you to be logged in/.test(l));
  assert.deepEqual(warnings, [], `npm publish --dry-run is clean:\n${dry.stderr}`);
  const info = json(dry.stdout)[pkg.name];
  const files = info.files.map((f) => f.path.replace(/\\/g, '/'));
  const tops = new Set(files.map((f) => (f.includes('/') ? `${f.split('/')[0]}/` : f)));
  assert.deepEqual([...tops].sort(), ['LICENSE', 'README.md', 'bin/', 'dist/', 'package.json'], files.join('\n'));
  for (const needed of ['bin/tl-tunnel.js', 'bin/tl-tunnel-server.js', 'dist/cli.js', 'dist/server-cli.js', 'dist/index.js', 'dist/index.d.ts']) assert.ok(files.includes(needed), `${needed} is in the tarball`);
  assert.deepEqual(files.filter((f) => /\.map$|\.test\.|(^|\/)(test|bench|src)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts'))), [], 'no sources, tests, benchmarks or source maps');

  const packed = await run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, env: npmEnv });
  const tarball = path.join(work, json(packed.stdout)[0].filename);
  const size = (await stat(tarball)).size;

  // An empty prefix and an empty cache; --ignore-scripts proves nothing needs building (bufferutil
  // ships prebuilt binaries and is optional).
  const app = path.join(work, 'app');
  const started = process.hrtime.bigint();
  await run(NPM, ['install', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', app, tarball], { cwd: work, env: npmEnv });
  const installMs = Number(process.hrtime.bigint() - started) / 1e6;
  t.diagnostic(`tarball ${(size / 1024).toFixed(1)} KiB (${files.length} files, ${(info.unpackedSize / 1024).toFixed(0)} KiB unpacked); install from an empty cache ${Math.round(installMs)} ms`);
  assert.ok(existsSync(path.join(app, 'node_modules', 'tl-tunnel', 'dist', 'cli.js')));
  assert.ok(!existsSync(path.join(app, 'node_modules', 'typescript')), 'no dev dependencies');
  const lock = JSON.parse(await readFile(path.join(app, 'node_modules', '.package-lock.json'), 'utf8'));
  const scripted = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript).map(([name]) => name.replace(/^.*node_modules\//, ''));
  assert.deepEqual(scripted.filter((name) => name !== 'bufferutil'), [], 'no install scripts besides the optional bufferutil');

  const env = cliEnv({ npm_config_cache: npmEnv.npm_config_cache, npm_config_update_notifier: 'false' });
  const version = await run(NPX, ['--no', '--', 'tl-tunnel', '--version'], { cwd: app, env });
  assert.equal(version.stdout.trim(), pkg.version);
  const help = await run(NPX, ['--no', '--', 'tl-tunnel', '--help'], { cwd: app, env });
  for (const example of ['psql', 'ProxyCommand tl-tunnel --stdio', 'completion bash', '-D [address:]port', 'help [command]']) assert.ok(help.stdout.includes(example), `--help shows ${example}`);
  // The README's tarball form: a relative path (an absolute one is taken for a command by npx).
  const fromTarball = await run(NPX, ['--yes', `./${path.basename(tarball)}`, '--version'], { cwd: work, env });
  assert.equal(fromTarball.stdout.trim(), pkg.version);

  // From a clone, as the README says: `npm install -g .` (here into a scratch prefix) puts both
  // commands on PATH, linked to the clone.
  const global = path.join(work, 'global');
  await run(NPM, ['install', '-g', '.', '--prefix', global, '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: ROOT, env: npmEnv });
  const globalBin = process.platform === 'win32' ? global : path.join(global, 'bin');
  for (const command of ['tl-tunnel', 'tl-tunnel-server']) {
    const r = await run(command, ['--version'], { env: cliEnv({ PATH: `${globalBin}${path.delimiter}${process.env.PATH}` }) });
    assert.equal(r.stdout.trim(), pkg.version, `${command} on PATH after npm install -g .`);
  }

  // A real forward: the installed tl-tunnel against the installed tl-tunnel-server.
  const echo = await startEcho();
  const installed = path.join(app, 'node_modules', 'tl-tunnel', 'bin');
  const server = spawn(process.execPath, [path.join(installed, 'tl-tunnel-server.js'), '--port', '0', '--json', '--token', CANARY_KEY], { env: cliEnv(), stdio: ['ignore', 'pipe', 'ignore'] });
  let serverOut = '';
  server.stdout.setEncoding('utf8').on('data', (d) => (serverOut += d));
  try {
    await eventually(() => serverOut.includes('\n'), { timeoutMs: 15_000, what: 'the installed tl-tunnel-server listening' });
    const { url } = JSON.parse(serverOut.split('\n')[0]);
    const cli = await startCli(['--proxy-url', url, 'sbx-npx', `:${echo.port}`], { bin: path.join(installed, 'tl-tunnel.js') });
    try {
      const data = randomBytes(100_000);
      assert.equal(sha256(await echoRoundTrip(cli.port, data)), sha256(data));
    } finally {
      const r = await cli.stop();
      assert.equal(r.code, 0, r.stderr);
    }
  } finally {
    server.kill('SIGINT');
    if (server.exitCode === null) await once(server, 'close');
    await echo.close();
  }
});
