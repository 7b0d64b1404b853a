import { ErrorCodes, TunnelError } from '../errors.js';
import type { SandboxApi } from './api.js';
import { peerText, type SandboxRecord } from './record.js';
import type { SandboxStatusEvent } from './resolve.js';

export interface WaitOptions {
  resume: boolean;
  waitMs: number;
  pollMs: number;
  signal?: AbortSignal;
  say: (e: Omit<SandboxStatusEvent, 'sandbox'>) => void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The line for a sandbox that will not run by itself. */
export function notRunningError(name: string, record: SandboxRecord, tense: 'is' | 'was' = 'is'): TunnelError {
  if (record.status === 'terminated') {
    const reason = record.terminationReason ? ` (termination reason: ${peerText(record.terminationReason, 120)})` : '';
    return new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} ${tense} terminated${reason}; it cannot be resumed`);
  }
  if (record.status === 'suspended') {
    return new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} ${tense} suspended; run again with --resume (or: tl sbx resume ${name})`);
  }
  return new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} is ${peerText(record.status, 40)}, not running`);
}

/**
 * Polls the record about once a second until the sandbox runs: a pending sandbox starts by itself,
 * a suspended one is resumed only when asked, a terminated one never comes back.
 */
export async function untilRunning(api: SandboxApi, name: string, first: SandboxRecord, o: WaitOptions): Promise<SandboxRecord> {
  const deadline = Date.now() + o.waitMs;
  let record = first;
  let resumed = false;
  let lastSaid = '';
  for (;;) {
    if (record.status === 'running') return record;
    if (record.status === 'terminated') throw notRunningError(name, record);
    if (record.status === 'suspended') {
      if (!o.resume) throw notRunningError(name, record);
      if (!resumed) {
        o.say({ phase: 'resuming', status: record.status, message: `Resuming sandbox ${name}…` });
        await api.resume(record.id, o.signal);
        resumed = true;
      }
    } else if (record.status !== lastSaid) {
      o.say({ phase: 'waiting', status: record.status, message: `Sandbox ${name} is ${peerText(record.status, 40)}; waiting for it to run…` });
    }
    lastSaid = record.status;
    if (Date.now() + o.pollMs > deadline) {
      throw new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} is still ${peerText(record.status, 40)} after ${Math.round(o.waitMs / 100) / 10} s; wait longer with --wait SECONDS`);
    }
    await sleep(o.pollMs, o.signal);
    record = await api.get(record.id, o.signal);
  }
}
