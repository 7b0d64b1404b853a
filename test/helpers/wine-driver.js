// Run by the Windows node.exe under Wine (never by the Linux runner): starts a Windows child (the
// CLI or the reference server) with pipes and an IPC channel, as a Windows parent would, and reports
// back through a file. Under Wine a Linux parent can neither read a Windows process's pipes nor open
// an IPC channel to it, and a signal from another process kills Node on Windows outright; so the
// parent's part is played here, Windows to Windows.
//
//   node.exe wine-driver.js <plan.json> <result.json>
// plan: { args, env?, unset?: variables to remove, input?: bytes for stdin (then stdin ends), ready?: file to write the
//   `listening` line to, hosts?: round trips through the listening port, release?: file to wait for,
//   stop?: the IPC message that stops it }
// result: { code, signal, stdout, stderr, roundTrips: [{ host, ok }], input?: { sent, received } }
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

const [planFile, resultFile] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, 'utf8'));
const sha = (buf) => createHash('sha256').update(buf).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const env = { ...process.env, ...plan.env };
for (const name of plan.unset ?? []) delete env[name];
const child = spawn(process.execPath, plan.args, { stdio: ['pipe', 'pipe', 'pipe', 'ipc'], env, windowsHide: true });
const out = [];
let stderr = '';
child.stdout.on('data', (d) => out.push(d));
child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
const result = { roundTrips: [] };

let sent;
if (plan.input !== undefined) {
  sent = randomBytes(plan.input);
  child.stdin.end(sent);
} else child.stdin.end();

/** Sends `bytes` random bytes to host:port and reads them back; true when every byte came back. */
function roundTrip(host, port, bytes) {
  const data = randomBytes(bytes);
  return new Promise((resolve) => {
    const chunks = [];
    const socket = net.connect(port, host, () => socket.write(data));
    socket.on('data', (d) => {
      chunks.push(d);
      if (Buffer.concat(chunks).length >= data.length) socket.end();
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(sha(Buffer.concat(chunks)) === sha(data)));
  });
}

async function drive() {
  if (plan.ready === undefined) return;
  const text = () => Buffer.concat(out).toString('utf8');
  let line;
  while (!(line = text().split(/\r?\n/).find((l) => l.includes('"listening"')))) {
    if (child.exitCode !== null) return;
    await sleep(50);
  }
  writeFileSync(plan.ready, line);
  const { port } = JSON.parse(line).addresses?.[0] ?? JSON.parse(line);
  for (const host of plan.hosts ?? []) result.roundTrips.push({ host, ok: await roundTrip(host, port, 256 * 1024) });
  while (plan.release !== undefined && !existsSync(plan.release)) await sleep(100);
  // What a Windows service manager or IDE does instead of Ctrl-C.
  if (plan.stop !== undefined) child.send(plan.stop);
}

await drive();
const timer = setTimeout(() => child.kill(), 60_000);
Object.assign(result, await exited);
clearTimeout(timer);
const stdout = Buffer.concat(out);
Object.assign(result, { stdout: plan.input === undefined ? stdout.toString('utf8') : '', stderr });
if (sent !== undefined) result.input = { sent: sha(sent), received: sha(stdout), bytes: stdout.length };
writeFileSync(resultFile, JSON.stringify(result));
