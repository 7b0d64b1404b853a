import { lstatSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { readSmallTextFile } from '../config/safe-read.js';
import { ErrorCodes, TunnelError } from '../errors.js';
import { checkControlDirectory, controlDirectory, notPrivate } from './directory.js';
import { readLine } from './line-socket.js';
import { CONTROL_VERSION, parseLine, type TunnelEntry, type TunnelStatus } from './protocol.js';

export interface RunningTunnel {
  entry: TunnelEntry;
  status: TunnelStatus;
}

export interface TunnelListing {
  running: RunningTunnel[];
  /** Entries that were not trusted or did not answer, one line each. */
  warnings: string[];
}

const QUERY_TIMEOUT_MS = 3000;

/**
 * Whether a process with this pid runs (EPERM: it does, as another user's). A zombie does not: it
 * has exited and closed every socket, and only waits for a parent (an init that reaps slowly, in
 * some containers) to collect its exit status.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    // "pid (comm) S ...": the state follows the last ')', since comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Gone already, or not ours to remove: either way it is no longer listed.
  }
}

function readEntry(dir: string, name: string, warnings: string[]): TunnelEntry | undefined {
  const file = path.join(dir, name);
  let stats;
  try {
    stats = lstatSync(file);
  } catch {
    return undefined;
  }
  const why = notPrivate(stats, 'file');
  if (why) {
    warnings.push(`${file} ${why}; not trusted, ignored`);
    return undefined;
  }
  const value = parseLine(readSmallTextFile(file, warnings, 'tunnel entry') ?? '');
  const id = name.slice(0, -'.json'.length);
  if (value?.v !== CONTROL_VERSION || value.id !== id || typeof value.endpoint !== 'string' || typeof value.token !== 'string' || !Number.isInteger(value.pid)) {
    warnings.push(`${file} is not a tunnel entry this version understands; ignored`);
    return undefined;
  }
  // An entry may only name a socket in this directory: no pointing `ps` at someone else's.
  if (process.platform !== 'win32' && path.dirname(value.endpoint as string) !== dir) {
    warnings.push(`${file} names an endpoint outside ${dir}; not trusted, ignored`);
    return undefined;
  }
  return value as unknown as TunnelEntry;
}

/** Sends one request to a tunnel's endpoint; undefined when nothing answered. */
export function askTunnel(entry: TunnelEntry, op: 'status' | 'stop'): Promise<Record<string, unknown> | 'refused' | undefined> {
  return new Promise((resolve) => {
    const socket = connect(entry.endpoint);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'refused' : undefined);
    });
    socket.once('connect', () => {
      socket.write(`${JSON.stringify({ v: CONTROL_VERSION, token: entry.token, op })}\n`);
      void readLine(socket, QUERY_TIMEOUT_MS).then((line) => {
        socket.destroy();
        resolve(line === undefined ? undefined : parseLine(line));
      });
    });
  });
}

/**
 * Lists this user's running tunnels by asking each entry's endpoint. An entry whose process is gone
 * is removed with its socket, so it is never shown as running; one that is not trusted (owner,
 * mode, a link) is left alone and named in a warning.
 */
export async function listTunnels(options: { dir?: string } = {}): Promise<TunnelListing> {
  const dir = options.dir ?? controlDirectory();
  const warnings: string[] = [];
  if (!checkControlDirectory(dir)) return { running: [], warnings };
  const entries = readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => readEntry(dir, name, warnings))
    .filter((e): e is TunnelEntry => e !== undefined);
  const answers = await Promise.all(entries.map(async (entry) => ({ entry, answer: await queryEntry(dir, entry, warnings) })));
  const running = answers.flatMap(({ entry, answer }) => (answer ? [{ entry, status: answer }] : []));
  running.sort((a, b) => a.status.startedAt.localeCompare(b.status.startedAt));
  return { running, warnings };
}

async function queryEntry(dir: string, entry: TunnelEntry, warnings: string[]): Promise<TunnelStatus | undefined> {
  if (process.platform !== 'win32') {
    let stats;
    try {
      stats = lstatSync(entry.endpoint);
    } catch {
      stats = undefined;
    }
    const why = stats && notPrivate(stats, 'socket');
    if (why) {
      warnings.push(`${entry.endpoint} ${why}; not trusted, ignored`);
      return undefined;
    }
  }
  const answer = await askTunnel(entry, 'status');
  if (answer && answer !== 'refused' && answer.ok === true && typeof answer.status === 'object') return answer.status as TunnelStatus;
  if (answer === 'refused' || !processAlive(entry.pid)) {
    // Its process died without cleaning up (kill -9, a crash, a reboot).
    removeQuietly(path.join(dir, `${entry.id}.json`));
    if (process.platform !== 'win32') removeQuietly(entry.endpoint);
    return undefined;
  }
  warnings.push(`tunnel ${entry.id} (pid ${entry.pid}) did not answer; not listed`);
  return undefined;
}

/**
 * Picks the tunnels that selectors name: an id, a unique start of one (at least 3 characters), or a
 * sandbox. Throws TL_ERR_NO_SUCH_TUNNEL naming every selector that matched nothing.
 */
export function selectTunnels(running: readonly RunningTunnel[], selectors: readonly string[]): RunningTunnel[] {
  const chosen = new Set<RunningTunnel>();
  const unknown: string[] = [];
  for (const selector of selectors) {
    const exact = running.filter((t) => t.status.id === selector || t.status.sandbox === selector);
    const byPrefix = selector.length >= 3 ? running.filter((t) => t.status.id.startsWith(selector)) : [];
    const found = exact.length > 0 ? exact : byPrefix.length === 1 ? byPrefix : [];
    if (found.length === 0) unknown.push(selector);
    for (const t of found) chosen.add(t);
  }
  if (unknown.length > 0) {
    const list = unknown.map((s) => JSON.stringify(s)).join(', ');
    throw new TunnelError(ErrorCodes.NO_SUCH_TUNNEL, `No running tunnel matches ${list}; \`tl-tunnel ps\` lists them`);
  }
  return [...chosen];
}

/**
 * Asks a tunnel to stop as Ctrl-C would, then waits until its process is gone. Resolves true when
 * it is, false when it still runs after `timeoutMs`.
 */
export async function stopTunnel(tunnel: RunningTunnel, timeoutMs = 15_000): Promise<boolean> {
  const answer = await askTunnel(tunnel.entry, 'stop');
  if (answer === 'refused') return !processAlive(tunnel.entry.pid);
  const deadline = Date.now() + timeoutMs;
  while (processAlive(tunnel.entry.pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
