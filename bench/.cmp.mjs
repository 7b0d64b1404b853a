// Interleaved ssh vs wss (vs extra CLIs) down/up, user/sys split.
import { readFileSync } from 'node:fs';
import { throughputDown, throughputUp, warmUp } from './lib/driver.js';
import { makeCert, tunnelClient, tunnelServer } from './lib/pairs.js';
import { startTarget } from './lib/target.js';
import { sshRelays } from './lib/ssh.js';
const MIB = Number(process.env.MIB ?? 256);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const DIRS = (process.env.DIRS ?? 'down').split(',');
const stat = (pid) => { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return [Number(f[11]) / 100, Number(f[12]) / 100, Number(f[7])]; };
const target = await startTarget();
const cert = makeCert();
const server = await tunnelServer(process.env.WS ? undefined : cert);
const pairs = [];
if (!process.env.NOSSH) { const s = await sshRelays(target); pairs.push({ ...s, name: 'ssh' }); }
for (const cli of (process.env.CLIS ?? 'bin/tl-tunnel.js').split(',')) {
  const c = await tunnelClient(server, target.port, { cli: new URL('../' + cli, import.meta.url).pathname, env: process.env.CENV ? { [process.env.CENV.slice(0, process.env.CENV.indexOf('='))]: process.env.CENV.slice(process.env.CENV.indexOf('=') + 1) } : {} });
  pairs.push({ name: cli, entryPort: c.port, clientPid: c.pid, stop: c.stop });
}
for (const p of pairs) await warmUp(p, target);
const res = {};
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 ? [...pairs].reverse() : pairs;
  for (const p of order) for (const d of DIRS) {
    const a = stat(p.clientPid);
    const x = await (d === 'down' ? throughputDown : throughputUp)(p, target, MIB * 1048576);
    await new Promise((r) => setTimeout(r, 30));
    const b = stat(p.clientPid);
    const g = MIB / 1024;
    (res[`${p.name} ${d}`] ??= []).push([x.mbps, (b[0] - a[0]) / g, (b[1] - a[1]) / g, (b[2] - a[2]) / MIB]);
  }
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(40), `${med(v.map((x) => x[0])).toFixed(0)} MB/s  user ${med(v.map((x) => x[1])).toFixed(2)}  sys ${med(v.map((x) => x[2])).toFixed(2)}  total ${med(v.map((x) => x[1] + x[2])).toFixed(2)}  faults/MiB ${med(v.map((x) => x[3])).toFixed(1)}`);
for (const p of pairs) await p.stop();
await server.stop(); await target.close(); cert.cleanup();
process.exit(0);
