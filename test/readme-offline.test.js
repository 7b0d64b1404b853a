// The README's offline shell blocks, run as written. A block marked `<!-- test: offline -->` (or
// `<!-- test: offline, expect: TEXT -->`) right before its ```sh fence runs with bash from the
// clone's root and must exit 0, print TEXT, and leave no process behind (its own `kill`/`wait` must
// stop what it started). The blocks use fixed ports (6379, 9443, ...), so where the machine allows it
// they run in a network namespace of their own (`unshare -rn`), away from anything else listening.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers/index.js';
import { needsTools } from './helpers/services.js';

const MARK = /^<!-- test: offline(?:, expect: (.*?))? -->\n```sh\n([\s\S]*?)\n```$/gm;

export function offlineBlocks(markdown) {
  return [...markdown.matchAll(MARK)].map((m) => ({ expect: m[1], script: m[2] }));
}

const toolSkip = needsTools('bash');
const isolated = spawnSync('unshare', ['-rn', 'true']).status === 0;

function runBlock(script, timeoutMs = 60_000) {
  // A fresh namespace starts with loopback down.
  const args = isolated ? ['unshare', ['-rn', 'bash', '-c', 'PATH=$PATH:/usr/sbin:/sbin ip link set lo up && exec bash -e -c "$0"', script]] : ['bash', ['-e', '-c', script]];
  return new Promise((resolve, reject) => {
    const child = spawn(args[0], args[1], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', HOME: process.env.HOME } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
    const timer = setTimeout(() => process.kill(-child.pid, 'SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let leftover = true;
      try {
        process.kill(-child.pid, 0);
      } catch {
        leftover = false;
      }
      if (leftover) process.kill(-child.pid, 'SIGKILL');
      resolve({ code, signal, out, leftover });
    });
  });
}

test('the README has offline blocks to run', () => {
  const blocks = offlineBlocks(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  assert.ok(blocks.length >= 1, 'at least the offline try-out is marked');
  for (const b of blocks) assert.doesNotMatch(b.script, /tl_apiKey_/, 'offline blocks use the reference server token, not a real key');
});

for (const [i, block] of offlineBlocks(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).entries()) {
  test(`README offline block ${i + 1} runs as written: ${block.script.split('\n')[0].replace(/\s+#.*$/, '').slice(0, 60)}`, { skip: toolSkip, timeout: 90_000 }, async () => {
    const r = await runBlock(block.script);
    assert.equal(r.code, 0, `exit ${r.code ?? r.signal}:\n${r.out}`);
    if (block.expect) assert.ok(r.out.includes(block.expect), `prints ${block.expect}:\n${r.out}`);
    assert.equal(r.leftover, false, `the block stops everything it started:\n${r.out}`);
  });
}
