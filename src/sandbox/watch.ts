import type { Agent } from 'node:http';
import { ErrorCodes, TunnelError } from '../errors.js';
import type { Credentials } from '../config/credentials.js';
import { SandboxApi } from './api.js';
import type { SandboxRecord } from './record.js';
import { DEFAULT_SANDBOX_WAIT_MS, type ResolvedSandbox, type SandboxStatusEvent } from './resolve.js';
import { notRunningError, untilRunning } from './wait.js';

function verdict(resumed: true | TunnelError): Verdict {
  return resumed === true ? { retry: true } : { retry: false, error: resumed };
}

/** At most one lookup this often, however many connections fail. */
const LOOKUP_EVERY_MS = 10_000;

type State = { record: SandboxRecord } | { gone: TunnelError } | { unknown: true };

export interface WatchOptions {
  credentials: Credentials;
  agent?: Agent;
  resume: boolean;
  waitMs?: number;
  requestTimeoutMs?: number;
  onStatus?: (event: SandboxStatusEvent) => void;
}

/** What to do about a failed connection. */
export type Verdict = { retry: true } | { retry: false; error: TunnelError };

/**
 * Explains why new connections fail while tunnels run (404/502 bursts): one lookup at most every
 * 10 s says whether the sandbox was suspended or terminated; with resume, a suspended sandbox is
 * resumed once and the connections that failed meanwhile try again when it runs.
 */
export class SandboxWatch {
  private readonly api: SandboxApi;
  private state: State;
  private checkedAt: number;
  private checking: Promise<State> | undefined;
  /** Resolves to true once the sandbox runs again, or to why it could not be resumed. */
  private resuming: Promise<true | TunnelError> | undefined;

  constructor(
    private readonly sandbox: ResolvedSandbox & { lookupBase: string },
    private readonly options: WatchOptions,
  ) {
    this.api = new SandboxApi({ base: sandbox.lookupBase, credentials: options.credentials, agent: options.agent, timeoutMs: options.requestTimeoutMs ?? 10_000 });
    // The first failure looks at once (one extra lookup at most, e.g. after a 502 at the startup check).
    this.state = { record: { id: sandbox.id, status: sandbox.status } };
    this.checkedAt = -Infinity;
  }

  private current(): Promise<State> {
    if (this.checking) return this.checking;
    if (Date.now() - this.checkedAt < LOOKUP_EVERY_MS) return Promise.resolve(this.state);
    this.checking = this.api.get(this.sandbox.id).then(
      (record): State => ({ record }),
      (err: unknown): State => (err instanceof TunnelError && err.code === ErrorCodes.SANDBOX_NOT_FOUND ? { gone: err } : { unknown: true }),
    );
    return this.checking.then((state) => {
      this.state = state;
      this.checkedAt = Date.now();
      this.checking = undefined;
      return state;
    });
  }

  private resume(record: SandboxRecord): Promise<true | TunnelError> {
    this.resuming ??= untilRunning(this.api, this.sandbox.requested, record, {
      resume: true,
      waitMs: this.options.waitMs ?? DEFAULT_SANDBOX_WAIT_MS,
      pollMs: 1000,
      say: (e) => this.options.onStatus?.({ sandbox: this.sandbox.requested, ...e }),
    }).then(
      (running): true => {
        this.state = { record: running };
        this.checkedAt = Date.now();
        return true;
      },
      (err: unknown) => (err instanceof TunnelError ? err : new TunnelError(ErrorCodes.INTERNAL, `Resuming sandbox ${this.sandbox.requested} failed: ${String(err)}`)),
    ).finally(() => {
      this.resuming = undefined;
    });
    return this.resuming;
  }

  /** Called with the error of a connection that failed; only 404 and 502 are looked into. */
  async explain(error: TunnelError): Promise<Verdict> {
    if (error.code !== ErrorCodes.SANDBOX_NOT_FOUND && error.code !== ErrorCodes.PORT_CLOSED) return { retry: false, error };
    if (this.resuming) return verdict(await this.resuming);
    const state = await this.current();
    if ('gone' in state) return { retry: false, error: new TunnelError(ErrorCodes.SANDBOX_NOT_FOUND, `Sandbox ${this.sandbox.requested} no longer exists`, { status: error.status }) };
    if ('unknown' in state || state.record.status === 'running') return { retry: false, error };
    if (state.record.status === 'suspended' && this.options.resume) {
      return verdict(await this.resume(state.record));
    }
    const why = notRunningError(this.sandbox.requested, state.record, 'was');
    return { retry: false, error: new TunnelError(why.code, why.message, { status: error.status }) };
  }
}
