// npm run bench:wan: latency over a simulated WAN (./delay-relay.js between the client and the
// reference server) at several round-trip times, in multiples of the RTT measured by a ping-pong;
// bulk throughput and client memory at 20 ms; the RSS of a warm socket. Writes bench/wan-results.json.
//   WAN_RTTS=0,20,80   round-trip times (ms)      WAN_QUICK=1   fewer samples (development)
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectTo, oneConnection, throughputDown, throughputUp } from '../lib/driver.js';
import { CLI, cliEnv, jsonLine, makeCert, tunnelServer } from '../lib/pairs.js';
import { killAll, median, peakRssKiB, sleep, startChild } from '../lib/proc.js';
import { machine } from '../lib/report.js';
import { startTarget } from '../lib/target.js';
import { bannerTime, httpTimes, startBanner, startHttp } from './services.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const QUICK = process.env.WAN_QUICK === '1';
const RTTS = (process.env.WAN_RTTS ?? '0,20,80').split(',').map(Number);
const N = QUICK ? { connections: 3, http: 5, startups: 2 } : { connections: 9, http: 20, startups: 7 };
const BULK_BYTES = (QUICK ? 16 : 64) * 1024 * 1024;
const BULK_RTT = 20;
const BULK_ROUNDS = QUICK ? 1 : 2;
const log = (text) => process.stderr.write(`${text}\n`);

/** Tunnel clients under test: [label, kind, secure, extra CLI args]. */
const CLIENTS = [
  ['tl-tunnel ws', 'cli', false, []],
  ['tl-tunnel ws --no-prewarm', 'cli', false, ['--no-prewarm']],
  ['tl-tunnel wss', 'cli', true, []],
  ['tl-tunnel wss --no-prewarm', 'cli', true, ['--no-prewarm']],
  ['SDK-shaped wss', 'sdk', true, []],
];

async function delayRelay(upstreamPort, rtt, env = process.env) {
  const h = await startChild(process.execPath, [path.join(HERE, 'delay-relay.js'), String(upstreamPort), String(rtt)], { ready: jsonLine('port'), name: 'delay relay', env });
  return { ...h, port: h.match.port };
}

/**
 * An idle forwarder: a wss CLI (default pool) through its own relay, used for one connection, then
 * left alone while the rest of the bench runs. `finish()` counts the connections it opened to the
 * proxy after its 60 s quiet period (the pool must have drained and gone silent).
 */
async function idleForwarder(server, target) {
  const relay = await delayRelay(server.port, BULK_RTT, { ...process.env, WAN_LOG_ACCEPTS: '1' });
  const client = await startCli({ ...server, viaRelay: `https://127.0.0.1:${relay.port}` }, [target.port], []);
  await oneConnection(client.ports[0]);
  const lastUse = Date.now();
  return {
    async finish() {
      const end = Date.now();
      const accepts = relay.output().split('\n').filter((l) => l.startsWith('{"accept"')).map((l) => JSON.parse(l).accept);
      await Promise.all([client.stop(), relay.stop()]);
      const quietEnd = lastUse + 60_000 + 1000;
      return { idleSeconds: Math.round((end - lastUse) / 1000), watchedAfterQuietSeconds: Math.max(0, Math.round((end - quietEnd) / 1000)), connectionsAfterQuiet: accepts.filter((t) => t > quietEnd).length, connectionsTotal: accepts.length };
    },
  };
}

/** Median of 10 one-byte round trips on an open connection through the relay to the echo. */
async function calibrate(port) {
  const socket = await connectTo(port);
  const echo = () =>
    new Promise((resolve) => {
      const t0 = performance.now();
      socket.once('data', () => resolve(performance.now() - t0));
      socket.write('E');
    });
  await echo();
  const times = [];
  for (let i = 0; i < 10; i += 1) times.push(await echo());
  socket.destroy();
  return median(times);
}

/** The tl-tunnel CLI with one mapping per remote port; resolves when all listen, with the ms it took. */
async function startCli(server, remotePorts, extra) {
  const env = cliEnv(server.cert ? { NODE_EXTRA_CA_CERTS: server.cert.cert } : {});
  const t0 = performance.now();
  const h = await startChild(process.execPath, [CLI, '--json', ...extra, '--proxy-url', server.viaRelay, 'bench', ...remotePorts.map((p) => `127.0.0.1:0:${p}`)], {
    env,
    name: 'tl-tunnel',
    ready: (text) => {
      const ports = text.split('\n').filter((l) => l.includes('"listening"')).map((l) => JSON.parse(l).addresses[0].port);
      return ports.length === remotePorts.length ? ports : undefined;
    },
  });
  return { ...h, ports: h.match, startupMs: performance.now() - t0 };
}

async function startSdk(server, remotePorts) {
  const env = cliEnv(server.cert ? { NODE_EXTRA_CA_CERTS: server.cert.cert } : {});
  const hs = await Promise.all(remotePorts.map((p) => startChild(process.execPath, [path.join(HERE, 'sdk-client.js'), server.viaRelay, String(p)], { env, ready: jsonLine('port'), name: 'sdk client' })));
  return { ports: hs.map((h) => h.match.port), pid: hs[0].pid, stop: () => Promise.all(hs.map((h) => h.stop())) };
}

function startClient([, kind, secure, extra], servers, remotePorts) {
  const server = secure ? servers.wss : servers.ws;
  return kind === 'sdk' ? startSdk(server, remotePorts) : startCli(server, remotePorts, extra);
}

/** New connection -> first echo, banner, sequential HTTP: medians in ms. */
async function latencies([echoPort, bannerPort, httpPort], rtt) {
  const echo = [];
  const banner = [];
  const response = [];
  const eof = [];
  // A pause between connections, as between a user's actions (the pool refills in it).
  const gap = () => sleep(rtt + 20);
  for (let i = 0; i < N.connections; i += 1) {
    echo.push(await oneConnection(echoPort));
    await gap();
  }
  for (let i = 0; i < N.connections; i += 1) {
    banner.push(await bannerTime(bannerPort));
    await gap();
  }
  // Back to back, like a script fetching one URL after another.
  for (let i = 0; i < N.http; i += 1) {
    const t = await httpTimes(httpPort);
    response.push(t.responseMs);
    eof.push(t.eofMs);
  }
  return { echo: median(echo), banner: median(banner), httpResponse: median(response), httpEof: median(eof) };
}

async function measureRtt(rtt, servers, targets) {
  const ports = [targets.echo.port, targets.banner.port, targets.http.port];
  const relays = await Promise.all(ports.map((p) => delayRelay(p, rtt)));
  const serverRelays = await Promise.all([servers.ws, servers.wss].map((s) => delayRelay(s.port, rtt)));
  servers.ws.viaRelay = `http://127.0.0.1:${serverRelays[0].port}`;
  servers.wss.viaRelay = `https://127.0.0.1:${serverRelays[1].port}`;
  const out = { measuredRttMs: rtt === 0 ? 0 : await calibrate(relays[0].port), rows: {} };
  try {
    log(`RTT ${rtt} ms (measured ${out.measuredRttMs.toFixed(1)}): direct TCP`);
    out.rows['direct TCP'] = await latencies(relays.map((r) => r.port), rtt);
    for (const c of CLIENTS) {
      log(`RTT ${rtt} ms: ${c[0]}`);
      const client = await startClient(c, servers, ports);
      try {
        await sleep(2 * rtt + 50);
        out.rows[c[0]] = await latencies(client.ports, rtt);
      } finally {
        await client.stop();
      }
    }
    // Start -> listening (the default startup check included), the clients taking turns so a
    // passing load spike does not land on one of them.
    const clis = CLIENTS.filter((x) => x[1] === 'cli');
    const times = Object.fromEntries(clis.map((c) => [c[0], []]));
    for (let i = 0; i < N.startups; i += 1) {
      for (const c of clis) {
        const client = await startCli(c[2] ? servers.wss : servers.ws, [targets.echo.port], c[3]);
        times[c[0]].push(client.startupMs);
        await client.stop();
      }
    }
    out.startup = Object.fromEntries(clis.map((c) => [c[0], median(times[c[0]])]));
  } finally {
    await Promise.all([...relays, ...serverRelays].map((r) => r.stop()));
  }
  return out;
}

/** Bulk up and down through one client at BULK_RTT, with the client's peak RSS (medians of rounds, each a fresh client). */
async function bulk(servers, target) {
  const rounds = [];
  for (let i = 0; i < BULK_ROUNDS; i += 1) rounds.push(await bulkRound(servers, target));
  const rows = {};
  for (const label of Object.keys(rounds[0])) {
    rows[label] = {};
    for (const key of ['upMBps', 'downMBps', 'peakRssMiB']) rows[label][key] = median(rounds.map((r) => r[label][key]));
  }
  return rows;
}

async function bulkRound(servers, target) {
  const rows = {};
  const serverRelays = await Promise.all([servers.ws, servers.wss].map((s) => delayRelay(s.port, BULK_RTT)));
  servers.ws.viaRelay = `http://127.0.0.1:${serverRelays[0].port}`;
  servers.wss.viaRelay = `https://127.0.0.1:${serverRelays[1].port}`;
  const direct = await delayRelay(target.port, BULK_RTT);
  try {
    const run = async (label, entryPort, pid) => {
      log(`bulk at ${BULK_RTT} ms: ${label}`);
      const pair = { name: label, entryPort, clientPid: pid };
      const up = await throughputUp(pair, target, BULK_BYTES);
      const down = await throughputDown(pair, target, BULK_BYTES);
      rows[label] = { upMBps: up.mbps, downMBps: down.mbps, peakRssMiB: pid ? peakRssKiB(pid) / 1024 : null };
    };
    await run('direct TCP', direct.port, undefined);
    for (const c of CLIENTS) {
      const client = await startClient(c, servers, [target.port]);
      try {
        await run(c[0], client.ports[0], client.pid);
      } finally {
        await client.stop();
      }
    }
  } finally {
    await Promise.all([...serverRelays, direct].map((r) => r.stop()));
  }
  return rows;
}

async function warmRss(server) {
  const h = await startChild(process.execPath, [path.join(HERE, 'warm-rss.js'), server.url], { env: cliEnv({ NODE_EXTRA_CA_CERTS: server.cert.cert }), ready: jsonLine('kib'), name: 'warm-rss', timeoutMs: 60_000 });
  await h.stop();
  return h.match;
}

const round = (x, d = 2) => (x === null || x === undefined ? null : Number(x.toFixed(d)));

function report(results) {
  const lines = [];
  for (const r of results.rtts) {
    const unit = r.rttMs === 0 ? 'ms' : '×RTT';
    const scale = (ms) => (r.rttMs === 0 ? round(ms, 1) : round(ms / r.measuredRttMs));
    lines.push(`\nRTT ${r.rttMs} ms (ping-pong ${round(r.measuredRttMs, 1)} ms), medians in ${unit}:`);
    lines.push(`${'client'.padEnd(28)}${['first echo', 'banner', 'HTTP response', 'HTTP EOF', 'startup'].map((h) => h.padStart(14)).join('')}`);
    for (const [label, row] of Object.entries(r.rows)) {
      const cells = [row.echo, row.banner, row.httpResponse, row.httpEof, r.startup?.[label]].map((x) => (x === undefined || x === null ? '-' : String(scale(x))));
      lines.push(`${label.padEnd(28)}${cells.map((c) => c.padStart(14)).join('')}`);
    }
  }
  lines.push(`\nbulk at ${BULK_RTT} ms RTT, ${BULK_BYTES / 1024 / 1024} MiB each way:`);
  for (const [label, row] of Object.entries(results.bulk)) lines.push(`${label.padEnd(28)} up ${round(row.upMBps, 0)} MB/s, down ${round(row.downMBps, 0)} MB/s, client peak RSS ${row.peakRssMiB === null ? '-' : `${round(row.peakRssMiB, 1)} MiB`}`);
  lines.push(`\nwarm wss socket: ${round(results.warmSocket.kib, 1)} KiB RSS each (${results.warmSocket.sockets} held, ${results.warmSocket.resumed} resumed TLS sessions)`);
  const idle = results.idleForwarder;
  if (idle) lines.push(`idle wss forwarder: ${idle.connectionsAfterQuiet} connections to the proxy in the ${idle.watchedAfterQuietSeconds} s watched after its 60 s quiet period (${idle.connectionsTotal} in all over ${idle.idleSeconds} s idle, startup included)`);
  for (const t of results.targets) lines.push(`target: ${t.figure} = ${t.value} (${t.target}) ${t.pass ? 'PASS' : 'MISS'}`);
  return lines.join('\n');
}

function targets(results) {
  const r80 = results.rtts.find((r) => r.rttMs === 80);
  const out = [];
  if (r80) {
    const w = r80.rows['tl-tunnel wss'];
    const d = r80.rows['direct TCP'];
    out.push({ figure: 'wss first echo / direct TCP (80 ms)', value: round(w.echo / d.echo, 3), target: '<= 1.15', pass: w.echo / d.echo <= 1.15 });
    out.push({ figure: 'wss banner in RTT (80 ms)', value: round(w.banner / r80.measuredRttMs, 3), target: '<= 1.2', pass: w.banner / r80.measuredRttMs <= 1.2 });
    out.push({ figure: 'wss HTTP EOF / direct TCP (80 ms)', value: round(w.httpEof / d.httpEof, 3), target: '<= 1.15', pass: w.httpEof / d.httpEof <= 1.15 });
  }
  const idle = results.idleForwarder;
  if (idle && idle.watchedAfterQuietSeconds > 0) {
    const perMinute = (idle.connectionsAfterQuiet * 60) / idle.watchedAfterQuietSeconds;
    out.push({ figure: 'idle forwarder: TLS handshakes per minute after the quiet period', value: round(perMinute, 2), target: '<= 1', pass: perMinute <= 1 });
  }
  out.push({ figure: 'RSS per warm socket (KiB)', value: round(results.warmSocket.kib, 1), target: '<= 100', pass: results.warmSocket.kib <= 100 });
  return out;
}

async function main() {
  const started = Date.now();
  const loadBefore = machine().loadavg;
  const cert = makeCert();
  const echo = await startTarget();
  const targetsUp = { echo, banner: await startBanner(), http: await startHttp() };
  const servers = { ws: await tunnelServer(undefined), wss: await tunnelServer(cert) };
  for (const s of Object.values(servers)) s.port = Number(new URL(s.url).port);
  const results = { rtts: [] };
  const idle = QUICK ? undefined : await idleForwarder(servers.wss, echo);
  try {
    for (const rtt of RTTS) results.rtts.push({ rttMs: rtt, ...(await measureRtt(rtt, servers, targetsUp)) });
    results.bulk = await bulk(servers, echo);
    results.warmSocket = await warmRss(servers.wss);
    results.idleForwarder = (await idle?.finish()) ?? null;
  } finally {
    await Promise.all([servers.ws.stop(), servers.wss.stop(), echo.close(), targetsUp.banner.close(), targetsUp.http.close()]);
    cert.cleanup();
  }
  results.targets = targets(results);
  results.machine = { ...machine(), loadavgBefore: loadBefore };
  results.config = { quick: QUICK, rtts: RTTS, samples: N, bulkBytes: BULK_BYTES, bulkRttMs: BULK_RTT, seconds: Math.round((Date.now() - started) / 1000) };
  process.stdout.write(`${report(results)}\n`);
  process.stdout.write(`\n${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}; ${results.config.seconds} s; load average before ${loadBefore[0]}, after ${results.machine.loadavg[0]}\n`);
  const file = QUICK || process.env.WAN_RTTS ? 'wan-results.partial.json' : 'wan-results.json';
  writeFileSync(path.join(HERE, '..', file), `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote bench/${file}`);
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
main().catch((err) => {
  log(`bench:wan failed: ${err.stack ?? err}`);
  killAll();
  process.exit(1);
});
