import { throughputDown, throughputUp, warmUp } from './lib/driver.js';
import { makeCert, tunnelClient, tunnelServer } from './lib/pairs.js';
import { startTarget } from './lib/target.js';
import { execFileSync, spawn } from 'node:child_process';
const dir = process.env.DIR ?? 'down';
const MIB = Number(process.env.MIB ?? 512);
const target = await startTarget();
const cert = makeCert();
const server = await tunnelServer(process.env.WS ? undefined : cert);
const client = await tunnelClient(server, target.port, { cli: process.env.CLI });
const pair = { name: 'x', entryPort: client.port, clientPid: client.pid };
await warmUp(pair, target);
let perf;
if (process.env.PERF) { perf = spawn('perf', ['record', '-g', '-F', '2000', '-o', process.env.PERF, '-p', String(client.pid)], { stdio: 'inherit' }); await new Promise(r => setTimeout(r, 500)); }
const rs = [];
for (let i = 0; i < Number(process.env.N ?? 3); i++) rs.push(await (dir === 'down' ? throughputDown : throughputUp)(pair, target, MIB * 1024 * 1024));
if (perf) { perf.kill('SIGINT'); await new Promise(r => perf.on('exit', r)); }
console.log(rs.map(r => `${r.mbps.toFixed(0)} MB/s ${r.cpuPerGiB.toFixed(2)} s/GiB`).join('\n'));
await client.stop(); await server.stop(); await target.close(); cert.cleanup();
process.exit(0);
