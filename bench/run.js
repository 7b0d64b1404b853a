// npm run bench: tl-tunnel against direct TCP, two chained Node relays, two chained socat and
// `ssh -L` on loopback; medians and ranges of BENCH_RUNS runs (default 3), ratios against ssh -L
// and against the earlier targets, and bench/results.json. Quick or partial runs write
// bench/results.partial.json instead.
//   BENCH_QUICK=1                small sizes, one run (for development)
//   BENCH_ONLY=node,ws           only these relays (direct, node, socat, ssh, ssh-aes, ws, wss)
//   BENCH_MIB=256                MiB per throughput transfer (default 1024, quick 128)
//   BENCH_PARTS=throughput,rtt   only these measurements (throughput, rtt, conn, idle, slow, version)
//   BENCH_PROFILE=<dir>          run the tunnel clients under --cpu-prof (bench/profile-summary.js)
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { holdConnections, pingPong, sequentialConnections, slowLocalReader, slowRemoteReader, throughputDown, throughputUp, connectTo, warmUp } from './lib/driver.js';
import { CLI, cliEnv, direct, hasSocat, makeCert, nodeRelays, socatRelays, tunnelClient, tunnelPair, tunnelServer } from './lib/pairs.js';
import { killAll, median, peakRssKiB, rssKiB, sleep } from './lib/proc.js';
import { checkTargets, machine, printTables, summarise } from './lib/report.js';
import { hasSsh, sshRelays } from './lib/ssh.js';
import { printVersusSsh } from './lib/versus-ssh.js';
import { startTarget } from './lib/target.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? (QUICK ? 1 : 3)));
const SIZES = QUICK
  ? { bytes: 128 * MiB, pings: 2000, connections: 200, idle: 200, slowSmall: 16 * MiB, slowLarge: 64 * MiB, versionRuns: 6 }
  : { bytes: 1024 * MiB, pings: 10_000, connections: 1000, idle: 1000, slowSmall: 256 * MiB, slowLarge: 1024 * MiB, versionRuns: 20 };
if (process.env.BENCH_MIB) SIZES.bytes = Number(process.env.BENCH_MIB) * MiB;
SIZES.slowSmallLabel = `${SIZES.slowSmall / MiB} MiB`;
SIZES.slowLargeLabel = `${SIZES.slowLarge / MiB} MiB`;
const SLOW_RATE = 40e6;
const PARTS = new Set((process.env.BENCH_PARTS ?? 'throughput,rtt,conn,idle,slow,version').split(','));
const PROFILE_DIR = process.env.BENCH_PROFILE;

const socat = hasSocat();
const ssh = hasSsh();
const ALL = ['direct', 'node', ...(socat ? ['socat'] : []), ...(ssh ? ['ssh', 'ssh-aes'] : []), 'ws', 'wss'];
const VARIANTS = process.env.BENCH_ONLY ? ALL.filter((v) => process.env.BENCH_ONLY.split(',').includes(v)) : ALL;
const LABELS = { direct: 'direct TCP', node: '2 Node relays', socat: '2 socat', ssh: 'ssh -L', 'ssh-aes': 'ssh -L aes-gcm', ws: 'tl-tunnel ws', wss: 'tl-tunnel wss' };

const log = (text) => process.stderr.write(`${text}\n`);

function startPair(variant, target, cert) {
  if (variant === 'direct') return direct(target);
  if (variant === 'node') return nodeRelays(target);
  if (variant === 'socat') return socatRelays(target);
  // OpenSSH's default cipher (chacha20-poly1305), and AES-GCM, which AES-NI makes cheap.
  if (variant === 'ssh') return sshRelays(target);
  if (variant === 'ssh-aes') return sshRelays(target, { cipher: 'aes128-gcm@openssh.com', name: LABELS[variant] });
  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${path.join(PROFILE_DIR, variant)}`] : [];
  return tunnelPair(target, variant === 'wss' ? cert : undefined, { nodeArgs });
}

/** Throughput, CPU, RTT and new-connection latency through one relay pair. */
async function measurePair(variant, target, cert) {
  const pair = await startPair(variant, target, cert);
  const out = {};
  try {
    if (PARTS.has('throughput')) {
      await warmUp(pair, target);
      const up = await throughputUp(pair, target, SIZES.bytes);
      const down = await throughputDown(pair, target, SIZES.bytes);
      Object.assign(out, { upMBps: up.mbps, downMBps: down.mbps, cpuUp: up.cpuPerGiB, cpuDown: down.cpuPerGiB });
    }
    if (PARTS.has('rtt')) out.rttUs = await pingPong(pair, SIZES.pings);
    if (PARTS.has('conn')) {
      const c = await sequentialConnections(pair, SIZES.connections);
      Object.assign(out, { connP50: c.p50, connP99: c.p99 });
    }
  } finally {
    await pair.stop();
  }
  return out;
}

/** RSS growth per held connection of a fresh relay client (`start()` -> { port, pid, stop }), KiB. */
async function idlePerConnection(start) {
  const client = await start();
  try {
    // A few connections first, so code paths are compiled and ws is fully loaded before the baseline.
    for (const s of await holdConnections(client.port, 20)) s.destroy();
    await sleep(500);
    const before = rssKiB(client.pid);
    const held = await holdConnections(client.port, SIZES.idle);
    await sleep(1000);
    const after = rssKiB(client.pid);
    for (const s of held) s.destroy();
    return (after - before) / SIZES.idle;
  } finally {
    await client.stop();
  }
}

/** The same for the client of two chained Node relays (the structural floor). */
async function nodeRelayClient(target) {
  const pair = await nodeRelays(target);
  return { port: pair.entryPort, pid: pair.clientPid, stop: pair.stop };
}

/** Peak RSS (MiB) of a fresh ws client over one slow transfer of `bytes`. */
async function slowPeak(server, target, bytes, direction) {
  const client = await tunnelClient(server, target.port);
  try {
    const pair = { name: 'tl-tunnel ws', entryPort: client.port };
    if (direction === 'down') await slowLocalReader(pair, target, bytes, SLOW_RATE);
    else await slowRemoteReader(pair, target, bytes, SLOW_RATE);
    return peakRssKiB(client.pid) / 1024;
  } finally {
    await client.stop();
  }
}

function wallMs(args, env) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
  return performance.now() - t0;
}

/** Median wall time of `tl-tunnel --version` and of `node -e 0`, alternating. */
function startupTimes() {
  const cli = [];
  const bare = [];
  const env = cliEnv();
  wallMs([CLI, '--version'], env); // warm the file cache
  for (let i = 0; i < SIZES.versionRuns; i += 1) {
    cli.push(wallMs([CLI, '--version'], env));
    bare.push(wallMs(['-e', '0'], env));
  }
  return { cliMs: median(cli), nodeMs: median(bare) };
}

/** Does the ws client resume TLS sessions? Counts handshakes in a probed client (not timed). */
async function tlsResumption(target, cert) {
  const server = await tunnelServer(cert);
  const file = path.join(cert.dir, 'probe.json');
  const client = await tunnelClient(server, target.port, { nodeArgs: ['--import', path.join(HERE, 'tls-probe.js')], env: { BENCH_TLS_PROBE: file } });
  try {
    for (let i = 0; i < 20; i += 1) {
      const s = await connectTo(client.port);
      await new Promise((resolve) => {
        s.once('data', resolve);
        s.write('E');
      });
      s.destroy();
    }
    return JSON.parse(readFileSync(file, 'utf8'));
  } finally {
    await Promise.all([client.stop(), server.stop()]);
  }
}

async function main() {
  const started = Date.now();
  const loadBefore = machine().loadavg;
  log(`tl-tunnel bench: ${RUNS} run(s)${QUICK ? ' (quick sizes)' : ''}; relays: ${VARIANTS.map((v) => LABELS[v]).join(', ')}${socat ? '' : ' (socat not installed)'}${ssh ? '' : ' (ssh or sshd not installed)'}`);
  const target = await startTarget();
  const cert = makeCert();
  const runs = [];
  let tls;
  try {
    for (let run = 1; run <= RUNS; run += 1) {
      const r = { variants: {}, slow: {}, version: {} };
      // Rotate the order each run, so slow drifts in the machine's load do not favour one relay.
      const order = VARIANTS.map((_, i) => VARIANTS[(i + run - 1) % VARIANTS.length]);
      for (const v of order) {
        log(`run ${run}/${RUNS}: ${LABELS[v]}`);
        r.variants[v] = await measurePair(v, target, cert);
      }
      if (PARTS.has('idle') || PARTS.has('slow')) {
        const wsServer = await tunnelServer(undefined);
        const wssServer = VARIANTS.includes('wss') ? await tunnelServer(cert) : undefined;
        try {
          if (PARTS.has('idle')) {
            log(`run ${run}/${RUNS}: ${SIZES.idle} idle tunnels`);
            if (VARIANTS.includes('node')) r.variants.node.idleKiB = await idlePerConnection(() => nodeRelayClient(target));
            if (VARIANTS.includes('ws')) r.variants.ws.idleKiB = await idlePerConnection(() => tunnelClient(wsServer, target.port));
            if (wssServer) r.variants.wss.idleKiB = await idlePerConnection(() => tunnelClient(wssServer, target.port));
          }
          if (PARTS.has('slow')) {
            log(`run ${run}/${RUNS}: slow readers (${SIZES.slowSmallLabel}, ${SIZES.slowLargeLabel} at 40 MB/s each way)`);
            r.slow.down256 = await slowPeak(wsServer, target, SIZES.slowSmall, 'down');
            r.slow.downBig = await slowPeak(wsServer, target, SIZES.slowLarge, 'down');
            r.slow.up256 = await slowPeak(wsServer, target, SIZES.slowSmall, 'up');
            r.slow.upBig = await slowPeak(wsServer, target, SIZES.slowLarge, 'up');
          }
        } finally {
          await Promise.all([wsServer.stop(), wssServer?.stop()]);
        }
      }
      if (PARTS.has('version')) r.version = startupTimes();
      runs.push(r);
    }
    if (VARIANTS.includes('wss')) tls = await tlsResumption(target, cert);
  } finally {
    await target.close();
    cert.cleanup();
  }

  const has = (v) => VARIANTS.includes(v);
  const summary = summarise(runs, VARIANTS);
  const checks = checkTargets(runs, summary, has);
  const seconds = Math.round((Date.now() - started) / 1000);
  // Other work on the machine skews every figure: keep the load average from before and after.
  const info = { ...machine(), loadavgBefore: loadBefore };
  process.stdout.write(`\n${printTables(summary, checks, VARIANTS, LABELS, SIZES)}\n`);
  const versus = printVersusSsh(runs, VARIANTS, LABELS);
  if (versus) process.stdout.write(`\n${versus}\n`);
  if (tls) process.stdout.write(`wss TLS sessions (probe, 20 connections): ${tls.full} full handshakes, ${tls.resumed} resumed (${tls.protocol}, ${tls.cipher})\n`);
  process.stdout.write(`\n${info.cpu}, ${info.cores} cores, ${info.ramGiB} GiB, Node ${info.node}; ${RUNS} run(s), ${seconds} s; load average before ${info.loadavgBefore[0]}, after ${info.loadavg[0]}\n`);
  const { slowSmallLabel, slowLargeLabel, ...sizes } = SIZES;
  const results = { machine: info, config: { runs: RUNS, quick: QUICK, sizes, slowReaderRate: SLOW_RATE, variants: VARIANTS.map((v) => LABELS[v]), seconds }, medians: summary, targets: checks, tlsSessions: tls ?? null, runs };
  // Only a complete default run replaces the published figures; partial runs go beside them.
  const file = QUICK || process.env.BENCH_MIB || process.env.BENCH_ONLY || process.env.BENCH_PARTS || PROFILE_DIR ? 'results.partial.json' : 'results.json';
  writeFileSync(path.join(HERE, file), `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote bench/${file}`);
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
main().catch((err) => {
  log(`bench failed: ${err.stack ?? err}`);
  killAll();
  process.exit(1);
});
