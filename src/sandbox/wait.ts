import { sleep } from '../backoff.js';
import { ErrorCodes, TunnelError } from '../errors.js';
import type { SandboxApi } from './api.js';
import { failureDetail, peerText, type SandboxRecord } from './record.js';
import type { SandboxStatusEvent } from './resolve.js';

export interface WaitOptions {
  resume: boolean;
  waitMs: number;
  pollMs: number;
  signal?: AbortSignal;
  say: (e: Omit<SandboxStatusEvent, 'sandbox'>) => void;
}

/** Statuses that never come back; `timeout` is a failure in both of Tensorlake's SDKs. */
export const ENDED = new Set(['terminated', 'timeout']);
/** Statuses Tensorlake documents; any other is waited on, but named as unknown. */
const KNOWN = new Set(['pending', 'running', 'snapshotting', 'suspending', 'suspended', 'terminated', 'timeout']);

/** The line for a sandbox that will not run by itself. */
export function notRunningError(name: string, record: SandboxRecord, tense: 'is' | 'was' = 'is'): TunnelError {
  if (ENDED.has(record.status)) {
    const detail = failureDetail(record);
    const what = record.status === 'timeout' ? `${tense === 'is' ? 'has' : 'had'} timed out` : `${tense} terminated`;
    return new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} ${what}${detail ? ` (${detail})` : ''}; it cannot be resumed`);
  }
  if (record.status === 'suspended') {
    return new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} ${tense} suspended; run again with --resume (or: tl sbx resume ${name})`);
  }
  return new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} is ${peerText(record.status, 40)}, not running`);
}

/**
 * Polls the record about once a second until the sandbox runs: a pending sandbox starts by itself,
 * a suspended one is resumed only when asked, a terminated one never comes back. A control plane
 * that is busy or briefly out of reach is asked again at the next poll, until the wait runs out.
 */
export async function untilRunning(api: SandboxApi, name: string, first: SandboxRecord, o: WaitOptions): Promise<SandboxRecord> {
  const deadline = Date.now() + o.waitMs;
  let record = first;
  let resumeAsked = false;
  let resumed = false;
  let lastSaid = '';
  /** The failure of the last request, while requests fail; said once per streak. */
  let failing: TunnelError | undefined;
  // While waiting, as upstream does, any failed request (a busy or unreachable control plane, and
  // also a 404 for a sandbox just created or resumed) is asked again at the next poll, until the
  // wait runs out; then the last failure is the answer.
  const survive = (err: unknown): void => {
    if (!(err instanceof TunnelError) || o.signal?.aborted) throw err;
    if (!failing) o.say({ phase: 'retry', status: record.status, message: `${err.message}; asking again while waiting` });
    failing = err;
  };
  for (;;) {
    if (record.status === 'running') return record;
    if (ENDED.has(record.status)) throw notRunningError(name, record);
    if (record.status === 'suspended') {
      if (!o.resume) throw notRunningError(name, record);
      if (!resumed) {
        if (!resumeAsked) o.say({ phase: 'resuming', status: record.status, message: `Resuming sandbox ${name}…` });
        resumeAsked = true;
        try {
          await api.resume(record.id, o.signal);
          resumed = true;
          failing = undefined;
        } catch (err) {
          survive(err);
        }
      }
    } else if (record.status !== lastSaid) {
      const unknown = KNOWN.has(record.status) ? '' : ' (a status tl-tunnel does not know)';
      o.say({ phase: 'waiting', status: record.status, message: `Sandbox ${name} is ${peerText(record.status, 40)}${unknown}; waiting for it to run…` });
    }
    lastSaid = record.status;
    if (Date.now() + o.pollMs > deadline) {
      throw failing ?? new TunnelError(ErrorCodes.SANDBOX_NOT_RUNNING, `Sandbox ${name} is still ${peerText(record.status, 40)} after ${Math.round(o.waitMs / 100) / 10} s; wait longer with --wait SECONDS`);
    }
    await sleep(o.pollMs, o.signal);
    try {
      record = await api.get(record.id, o.signal);
      // Back from a failure streak: say again what we wait for (the retry line replaced it).
      if (failing) lastSaid = '';
      failing = undefined;
    } catch (err) {
      survive(err);
    }
  }
}
