// node bench/ab.js <rev-a> <rev-b> [...]: the bulk-transfer cost of the tunnel CLI as built from
// each git revision, interleaved (A B, then B A, ...) against one reference server on loopback,
// so a lever is judged against its own "before" under the same machine load. Per revision and
// direction: median [min-max] of MB/s, client CPU s/GiB and the client's minor page faults per MiB,
// and per revision the mean round trip of 1-byte ping-pongs (AB_PINGS of them, default 5000).
//   AB_VARIANT=wss   ws or wss (default wss)      AB_ROUNDS=5    rounds (default 5)
//   AB_MIB=256       MiB per transfer             WORKTREE       (a revision's name) the working tree as built
//   AB_WARMUP=0      measure a fresh client's first transfers (default: 32 MiB each way first)
//   AB_CLIENT_ENV='NAME=value NAME2=value2'   extra environment of every client (e.g. GLIBC_TUNABLES)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pingPong, throughputDown, throughputUp, warmUp } from './lib/driver.js';
import { makeCert, tunnelClient, tunnelServer } from './lib/pairs.js';
import { killAll, median, minorFaults } from './lib/proc.js';
import { startTarget } from './lib/target.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VARIANT = process.env.AB_VARIANT ?? 'wss';
const ROUNDS = Number(process.env.AB_ROUNDS ?? 5);
const BYTES = Number(process.env.AB_MIB ?? 256) * 1024 * 1024;
const WARM = process.env.AB_WARMUP !== '0';
const PINGS = Number(process.env.AB_PINGS ?? 5000);
const CLIENT_ENV = Object.fromEntries((process.env.AB_CLIENT_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

/** `rev` checked out and compiled in a temp dir (node_modules shared with this tree); WORKTREE is this tree. */
function build(rev, dir) {
  if (rev === 'WORKTREE') return path.join(ROOT, 'bin', 'tl-tunnel.js');
  const out = path.join(dir, rev.replace(/[^\w.-]/g, '_'));
  execFileSync('sh', ['-c', `mkdir -p "${out}" && git -C "${ROOT}" archive "${rev}" | tar -x -C "${out}"`]);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(out, 'node_modules'));
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(out, 'tsconfig.json')], { stdio: 'inherit' });
  return path.join(out, 'bin', 'tl-tunnel.js');
}

const fmt = (xs, digits) => `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;

async function main() {
  const revs = process.argv.slice(2);
  if (revs.length < 2) throw new Error('usage: node bench/ab.js <rev-a> <rev-b> [...]');
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-bench-ab-'));
  const target = await startTarget();
  const cert = makeCert();
  const results = new Map();
  try {
    const clis = revs.map((rev) => build(rev, dir));
    const server = await tunnelServer(VARIANT === 'wss' ? cert : undefined);
    try {
      for (let round = 0; round < ROUNDS; round += 1) {
        // Alternate the order, so a drift in the machine's load favours neither revision.
        const order = revs.map((_, i) => i);
        if (round % 2) order.reverse();
        for (const i of order) {
          const client = await tunnelClient(server, target.port, { cli: clis[i], env: CLIENT_ENV });
          const pair = { name: revs[i], entryPort: client.port, clientPid: client.pid };
          try {
            if (WARM) await warmUp(pair, target);
            if (PINGS > 0) {
              if (!results.has(`${revs[i]} rtt`)) results.set(`${revs[i]} rtt`, { rtt: [] });
              results.get(`${revs[i]} rtt`).rtt.push(await pingPong(pair, PINGS));
            }
            for (const [dir, run] of [['up', throughputUp], ['down', throughputDown]]) {
              const faults0 = minorFaults(client.pid);
              const r = await run(pair, target, BYTES);
              const key = `${revs[i]} ${dir}`;
              if (!results.has(key)) results.set(key, { mbps: [], cpu: [], faults: [] });
              const row = results.get(key);
              row.mbps.push(r.mbps);
              row.cpu.push(r.cpuPerGiB);
              row.faults.push((minorFaults(client.pid) - faults0) / (BYTES / 1024 / 1024));
            }
          } finally {
            await client.stop();
          }
        }
      }
    } finally {
      await server.stop();
    }
  } finally {
    await target.close();
    cert.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`tl-tunnel ${VARIANT}, ${ROUNDS} interleaved rounds of ${BYTES / 1024 / 1024} MiB each way${WARM ? '' : ', fresh clients (no warm-up)'}: median [min-max]\n`);
  for (const [key, r] of results) {
    if (r.rtt) process.stdout.write(`${key.padEnd(24)} ${fmt(r.rtt, 1).padStart(16)} µs ping-pong round trip\n`);
    else process.stdout.write(`${key.padEnd(24)} ${fmt(r.mbps, 0).padStart(16)} MB/s ${fmt(r.cpu, 2).padStart(18)} CPU s/GiB ${fmt(r.faults, 0).padStart(14)} faults/MiB\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`ab failed: ${err.stack ?? err}\n`);
  killAll();
  process.exit(1);
});
