// RSS cost of one warm socket: node warm-rss.js <proxy-base-url> (a wss reference server, trusted
// through NODE_EXTRA_CA_CERTS). Opens warm sockets with the library's own code path (the connector's
// opener: TCP, TLS with the shared secure context and session cache), holds them idle, and prints
// {"sockets":N,"kib":RSS growth per socket}.
import { readFileSync } from 'node:fs';
import { Connector } from '../../dist/client/warm/connector.js';

const base = new URL(process.argv[2]);
const target = { host: base.hostname, port: Number(base.port), secure: base.protocol === 'https:' };
const COUNT = 200;
const rss = () => Number(readFileSync('/proc/self/status', 'utf8').match(/^VmRSS:\s+(\d+)/m)[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const connector = new Connector(target, undefined, { max: 4, idleMs: 600_000 });
// The pool's opener (private in TypeScript, reachable here): exactly what a warm socket costs.
const openAhead = () => connector.openAhead();
const open = async (n) => {
  const sockets = [];
  for (let i = 0; i < n; i += 10) sockets.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, openAhead))));
  return sockets;
};

// Some first, so TLS, the session cache and the code paths are warm before the baseline.
for (const s of await open(20)) s.destroy();
await sleep(300);
const before = rss();
const held = await open(COUNT);
await sleep(500);
const after = rss();
process.stdout.write(`${JSON.stringify({ sockets: held.length, kib: (after - before) / held.length, resumed: held.filter((s) => s.isSessionReused?.()).length })}\n`);
for (const s of held) s.destroy();
connector.close();
