import { backoffDelay, sleep } from '../backoff.js';
import { ErrorCodes, TunnelError } from '../errors.js';

/** Whether a lookup failed because the control plane was busy (429, 5xx gateway answers), which a later request may not be. */
export function isBusyAnswer(err: unknown): err is TunnelError {
  return err instanceof TunnelError && err.code === ErrorCodes.LOOKUP && err.retryable;
}

/**
 * Whether a poll made while waiting failed only for now: busy, unreachable or slow (what SandboxApi
 * marks retryable). The user asked to wait, so one bad answer in two minutes of polling must not end it.
 */
export function isPassingFailure(err: unknown): err is TunnelError {
  return err instanceof TunnelError && err.retryable;
}

export interface PatienceOptions {
  /** How long to keep asking, from the first request. */
  budgetMs: number;
  signal?: AbortSignal;
  /** Told before each new request, with the answer that made it necessary. */
  onRetry: (attempt: number, error: TunnelError) => void;
}

/**
 * Runs `call`, asking again after busy answers with jittered backoff while the budget lasts. An
 * unreachable control plane is not retried here: that is most often a wrong URL, and saying so at
 * once beats saying so ten seconds later. Anything else, and the last busy answer, is thrown as is.
 */
export async function askPatiently<T>(call: () => Promise<T>, o: PatienceOptions): Promise<T> {
  const deadline = Date.now() + o.budgetMs;
  for (let n = 0; ; n += 1) {
    try {
      return await call();
    } catch (err) {
      if (!isBusyAnswer(err)) throw err;
      const delay = backoffDelay(n, 250, 2000);
      if (Date.now() + delay >= deadline || o.signal?.aborted) throw err;
      o.onRetry(n + 1, err);
      try {
        await sleep(delay, o.signal);
      } catch {
        throw err;
      }
    }
  }
}
