// Child processes and what /proc says about them: CPU seconds, RSS, peak RSS.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on every Linux Node runs on). */
const TICKS = 100;

/** The fields of /proc/<pid>/stat from field 3 (state) on: field n is at index n - 3. */
function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may hold spaces: count fields after its closing parenthesis.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds used by `pid` (user + system, plus reaped children, for socat's forks). */
export function cpuSeconds(pid) {
  const f = statFields(pid);
  const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]].map(Number);
  return (utime + stime + cutime + cstime) / TICKS;
}

/** Minor page faults of `pid` so far (fresh memory touched for the first time, among others). */
export function minorFaults(pid) {
  return Number(statFields(pid)[7]);
}

function statusKiB(pid, field) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]);
}

/** Resident set size now, KiB. */
export const rssKiB = (pid) => statusKiB(pid, 'VmRSS');
/** Peak resident set size since the process started, KiB. */
export const peakRssKiB = (pid) => statusKiB(pid, 'VmHWM');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port nothing listens on now (for socat, which cannot report the one it picked). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitListening(port, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on port ${port}`);
    await sleep(50);
  }
}

const children = new Set();

/**
 * Spawns a child and resolves when `ready(text)` matches its stdout+stderr, with the match.
 * Returns { child, pid, match, output(), stop() }.
 */
export function startChild(cmd, args, { env = process.env, ready, timeoutMs = 15_000, name = cmd } = {}) {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let text = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => (children.delete(child), resolve({ code, signal }))));
  const handle = {
    child,
    pid: child.pid,
    output: () => text,
    /** SIGTERM, then SIGKILL if it lingers; resolves once it exited. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start in time:\n${text}`));
    }, timeoutMs);
    const onData = (d) => {
      text += d;
      if (text.length > 64 * 1024) text = text.slice(-32 * 1024);
      const match = ready ? ready(text) : true;
      if (match && !handle.match) {
        handle.match = match;
        clearTimeout(timer);
        resolve(handle);
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('error', (err) => (clearTimeout(timer), reject(err)));
    if (!ready) child.once('spawn', () => onData(''));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!handle.match) reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${text}`));
    });
  });
}

/** Kills every child still running (on a crash of the bench itself). */
export function killAll() {
  for (const c of children) c.kill('SIGKILL');
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Nearest-rank percentile of a list of numbers. */
export function percentile(xs, p) {
  const v = [...xs].sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}
