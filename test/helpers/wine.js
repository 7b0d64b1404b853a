// The Windows build of Node under Wine, for the Windows lane (.ci/run sets TL_WINDOWS_NODE to its
// node.exe). Wine's limits are worked around here, never in the product: a Windows process cannot
// write to a Unix pipe, so output is captured through files; a Linux parent can open no IPC channel
// to a Windows child, so wine-driver.js plays the Windows parent; each process start costs 1-3 s.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { CANARY_KEY, CLI, ROOT, cliEnv } from './index.js';

export const NODE_EXE = process.env.TL_WINDOWS_NODE;
export const wineSkip = NODE_EXE ? false : 'set TL_WINDOWS_NODE to a Windows node.exe to run under Wine (.ci/run does)';

const scratch = mkdtempSync(path.join(tmpdir(), 'tl-wine-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A path of this machine as the Windows process sees it: Wine maps Z: to /. */
export const windowsPath = (file) => `Z:${file.replace(/\//g, '\\')}`;
/** The control directory of the Windows processes of one test file. */
export const RUNTIME_DIR = windowsPath(path.join(scratch, 'run'));

/**
 * The Windows user's home (%USERPROFILE%, C:\users\<name>) on this machine's disk. Wine sets
 * USERPROFILE itself, whatever the environment says, so a test writes its config files there.
 */
export function wineHome() {
  const prefix = process.env.WINEPREFIX ?? path.join(process.env.HOME ?? '', '.wine');
  const home = path.join(prefix, 'drive_c', 'users', userInfo().username);
  assert.ok(existsSync(home), `no Wine user profile at ${home} (run wine wineboot --init)`);
  return { unix: home, windows: `C:\\users\\${userInfo().username}` };
}

let runs = 0;
const scratchFile = (suffix) => path.join(scratch, `${(runs += 1)}.${suffix}`);

/** Starts node.exe under Wine with stdout and stderr going to files; resolves when it exits. */
function wine(args, env) {
  const files = { out: scratchFile('out'), err: scratchFile('err') };
  const fdOut = openSync(files.out, 'w');
  const fdErr = openSync(files.err, 'w');
  const child = spawn('wine', [NODE_EXE, ...args], {
    stdio: ['ignore', fdOut, fdErr],
    env: cliEnv({ TL_TUNNEL_RUNTIME_DIR: RUNTIME_DIR, NODE_SKIP_PLATFORM_CHECK: '1', WINEDEBUG: '-all', ...env }),
  });
  closeSync(fdOut);
  closeSync(fdErr);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const r = { code, stdout: readFileSync(files.out, 'utf8'), stderr: readFileSync(files.err, 'utf8') };
      assert.ok(!(r.stdout + r.stderr).includes(CANARY_KEY), 'the key leaked');
      resolve(r);
    });
  });
}

/** Runs the CLI (bin/tl-tunnel.js, not npm's .cmd shim) with Windows node; resolves { code, stdout, stderr }. */
export const winCli = (args, env = {}) => wine([CLI, ...args], env);

/**
 * Runs Windows node itself (`--test …`, a script). Not as a child of this test runner: with
 * NODE_TEST_CONTEXT inherited, `node --test` would report to it in its own protocol instead of TAP.
 */
export const winNode = (args, env = {}) => wine(args, { NODE_TEST_CONTEXT: undefined, ...env });

/**
 * Starts wine-driver.js with `plan` (see there), Windows paths filled in. Returns `ready` (the
 * child's `listening` line, parsed, once plan.ready is asked), `release()` (lets a driver waiting
 * on plan.release go on) and `result` (what the driver wrote once the child exited).
 */
export function winDriver(plan) {
  const planFile = scratchFile('plan.json');
  const resultFile = scratchFile('result.json');
  const ready = plan.ready ? scratchFile('ready') : undefined;
  const release = plan.release ? scratchFile('release') : undefined;
  const full = { ...plan, ready: ready && windowsPath(ready), release: release && windowsPath(release) };
  writeFileSync(planFile, JSON.stringify(full));
  const ran = wine([path.join(ROOT, 'test', 'helpers', 'wine-driver.js'), windowsPath(planFile), windowsPath(resultFile)], plan.driverEnv ?? {});
  const result = ran.then((r) => {
    assert.ok(existsSync(resultFile), `the driver wrote no result (exit ${r.code}):\n${r.stderr}`);
    const written = JSON.parse(readFileSync(resultFile, 'utf8'));
    assert.ok(!JSON.stringify(written).includes(CANARY_KEY), 'the key leaked');
    return written;
  });
  const readyLine = (async () => {
    if (!ready) return undefined;
    let done = false;
    ran.then(() => (done = true));
    for (;;) {
      try {
        return JSON.parse(readFileSync(ready, 'utf8'));
      } catch {
        // Not written yet, or not all of it.
      }
      if (done) throw new Error(`the child exited before it listened: ${JSON.stringify(await result)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return { ready: readyLine, release: () => release && writeFileSync(release, ''), result };
}
