import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { controlDirectory, ensureControlDirectory, newTunnelId } from '../../index.js';
import type { CliConfig } from '../program.js';
import type { Output } from '../output.js';
import { writeTo } from '../std-streams.js';
import { DETACH_ID_ENV, DETACH_LOG_ENV } from './register.js';

/** Logs of tunnels that ended are kept this long, for `tl-tunnel logs` after the fact. */
const KEEP_LOGS_MS = 7 * 24 * 3600_000;

/**
 * `--detach`: starts the same command again as a background process (its own session, no
 * terminal, its output in a log file) and returns once it listens, after saying what it said: the
 * Forwarding lines and its id, or the same one-line error and exit code a foreground run gives.
 */
export async function runDetached(argv: readonly string[], config: CliConfig, out: Output): Promise<number> {
  const dir = ensureControlDirectory(controlDirectory());
  pruneOldLogs(dir);
  const id = newTunnelId();
  const log = path.join(dir, `${id}.log`);
  const fd = openSync(log, 'a', 0o600);
  const child = spawn(process.execPath, [...process.execArgv, ...argv.slice(1)], {
    detached: true,
    stdio: ['ignore', fd, fd, 'ipc'],
    env: { ...process.env, [DETACH_ID_ENV]: id, [DETACH_LOG_ENV]: log },
    windowsHide: true,
  });
  closeSync(fd);
  const outcome = await new Promise<{ ready: true } | { ready: false; code: number }>((resolve) => {
    child.on('message', (m: { type?: string } | null) => {
      if (m?.type === 'ready') resolve({ ready: true });
    });
    child.once('exit', (code, signal) => resolve({ ready: false, code: code ?? (signal ? 1 : 0) }));
    child.once('error', () => resolve({ ready: false, code: 1 }));
  });
  replay(readFileSync(log, 'utf8'), config.json, id);
  if (!outcome.ready) {
    // Everything it said was just said again: a log of a tunnel that never ran helps nobody.
    unlinkSync(log);
    if (outcome.code === 0) out.info('The background tunnel ended before it listened');
    return outcome.code === 0 ? 1 : outcome.code;
  }
  out.event('detached', { id, pid: child.pid, log });
  if (!config.json) out.info(`Logs: tl-tunnel logs ${id}; list: tl-tunnel ps`);
  child.disconnect();
  child.unref();
  return 0;
}

/**
 * Says again what the background process wrote while starting: its human lines to stderr, and with
 * --json its events to stdout, each with the tunnel's id added to `listening`.
 */
function replay(text: string, json: boolean, id: string): void {
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('{"event":')) {
      if (json) writeTo(process.stdout, `${line.startsWith('{"event":"listening"') ? withTunnelId(line, id) : line}\n`);
    } else {
      writeTo(process.stderr, `${line}\n`);
    }
  }
}

function pruneOldLogs(dir: string): void {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.log')) continue;
    const file = path.join(dir, name);
    try {
      if (now - statSync(file).mtimeMs > KEEP_LOGS_MS) unlinkSync(file);
    } catch {
      // Another tl-tunnel pruned it first, or it is not ours to remove.
    }
  }
}

function withTunnelId(line: string, id: string): string {
  try {
    return JSON.stringify({ ...(JSON.parse(line) as object), tunnel: id });
  } catch {
    return line;
  }
}
