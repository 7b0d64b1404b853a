import { isIP } from 'node:net';
import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import { ErrorCodes, TunnelError } from '../errors.js';
import { backoffDelay, sleep } from '../backoff.js';
import { networkError, statusError, type UpgradeContext } from './upgrade-error.js';
import { frameMask } from './masking.js';
import { markWarm, type Connector } from './warm/connector.js';

export interface ConnectParams {
  url: string;
  headers: Record<string, string>;
  ctx: UpgradeContext;
  /** Budget for the whole upgrade, retries of transient failures included. */
  timeoutMs: number;
  /** Keep retrying 502 (service not started yet) for this long; 0 fails at once. */
  waitMs?: number;
  agent?: Agent;
  /** Where sockets come from (warm or fresh); without it, or when it declines, ws uses `agent`. */
  connector?: Connector;
  /** Requests whose answer came from the HTTP proxy rather than the sandbox proxy. */
  proxyRefused?: WeakSet<ClientRequest>;
  maxPayload: number;
  signal?: AbortSignal;
  onRetry?: (info: RetryInfo) => void;
  /**
   * The start-up check: a refused connection fails at once. Nothing listening at the proxy's
   * address is a wrong URL far more often than a proxy restarting; later tunnels still retry it.
   */
  refusedIsFinal?: boolean;
}

function refused(error: TunnelError): boolean {
  return (error.cause as { code?: unknown } | undefined)?.code === 'ECONNREFUSED';
}

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  error: TunnelError;
}

const MAX_ERROR_BODY = 16 * 1024;
/** Least time given to one upgrade attempt while waiting for a service (--wait). */
const MIN_WAIT_ATTEMPT_MS = 2000;
const BODY_READ_MS = 2000;

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      clearTimeout(timer);
      res.removeAllListeners('data');
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(done, BODY_READ_MS).unref();
    res.on('data', (chunk: Buffer) => {
      if (size < MAX_ERROR_BODY) chunks.push(chunk.subarray(0, MAX_ERROR_BODY - size));
      size += chunk.length;
      if (size >= MAX_ERROR_BODY) done();
    });
    res.once('end', done);
    res.once('error', done);
    res.once('aborted', done);
  });
}

function noop(): void {}

/** SNI for the proxy's URL: its host name, none for an IP address (as Node does by default). */
function serverName(url: string): string {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return isIP(host) ? '' : host;
}

/** A warm socket turned out dead before any answer: the caller connects afresh, as if nothing happened. */
class WarmSocketDead extends Error {}

/** One upgrade attempt, bounded by `budgetMs`. */
function attempt(WebSocketClass: typeof WebSocket, p: ConnectParams, budgetMs: number, allowWarm: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let answered = false;
    const lease = p.connector?.lease(allowWarm);
    // Warm sockets, too, may come through the agent (an HTTP CONNECT proxy): it counts either way.
    const generateMask = frameMask(p.url, p.agent !== undefined);
    const ws = new WebSocketClass(p.url, {
      headers: p.headers,
      perMessageDeflate: false,
      skipUTF8Validation: true,
      maxPayload: p.maxPayload,
      followRedirects: false,
      ...(generateMask ? { generateMask } : {}),
      agent: lease ? undefined : p.agent,
      // TLS names the proxy's host, never the Host header (a loopback proxy gets Host: <id>.local).
      ...(lease ? {} : { servername: serverName(p.url) }),
      // Node's http client also accepts the callback form (a socket still opening); @types/ws does not say so.
      ...((lease ? { createConnection: lease.createConnection } : {}) as object),
      // ws cuts a close handshake after closeTimeout even while our close frame still waits behind
      // data a slow peer is draining; the relay cuts stops and failures sooner itself (closeGraceMs).
      // ws 8.23 reads closeTimeout; @types/ws does not list it yet.
      ...({ closeTimeout: 30_000 } as object),
    });
    // An upgrade on a warm socket that a NAT or firewall forgot gets no answer at all (no FIN, no
    // reset): after a short while, try a fresh connection rather than wait out the connect timeout.
    const warmTimer = lease?.ready ? setTimeout(() => answered || settle(new WarmSocketDead('no answer on a warm socket')), p.connector?.warmAnswerMs() ?? 1000) : undefined;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(warmTimer);
      p.signal?.removeEventListener('abort', onAbort);
      ws.off('open', onOpen);
      ws.off('error', onError);
      if (err === undefined) {
        resolve(ws);
        return;
      }
      ws.on('error', noop);
      ws.terminate();
      reject(err);
    };
    // Frames that came in the same read as the 101 (a server-first banner, a close) would be
    // emitted before the caller attaches its listeners and be lost: hold them until it resumes.
    const onOpen = (): void => {
      ws.pause();
      if (lease?.warm) {
        markWarm(ws);
        p.connector?.used();
      }
      settle();
    };
    // A warm socket the proxy closed just before we used it fails before any answer: not an error.
    const onError = (err: Error & { code?: string }): void => settle(lease?.warm && !answered ? new WarmSocketDead(err.message) : networkError(err, p.ctx));
    const onAbort = (): void => settle(p.signal?.reason instanceof TunnelError ? p.signal.reason : new TunnelError(ErrorCodes.INTERNAL, 'aborted'));
    const timer = setTimeout(() => {
      settle(new TunnelError(ErrorCodes.TIMEOUT, `The sandbox proxy at ${p.ctx.host} did not open the tunnel in time (connect timeout)`, { host: p.ctx.host, retryable: true }));
    }, budgetMs);
    ws.once('open', onOpen);
    ws.on('error', onError);
    ws.once('upgrade', () => (answered = true));
    ws.once('unexpected-response', (req: ClientRequest, res: IncomingMessage) => {
      answered = true;
      const status = res.statusCode ?? 0;
      // A 408 on a warm socket is the proxy's goodbye to an idle connection, crossing our request.
      if (status === 408 && lease?.warm) {
        req.destroy();
        settle(new WarmSocketDead('408 on a warm socket'));
        return;
      }
      const fromProxy = p.proxyRefused?.has(req) ?? false;
      void readBody(res).then((body) => {
        req.destroy();
        settle(statusError(status, body, p.ctx, fromProxy));
      });
    });
    p.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Opens one tunnel WebSocket, retrying network errors, timeouts, 429 and 5xx (other than 502) with
 * jittered backoff inside `timeoutMs`, and 502 inside `waitMs` when waiting for a service.
 */
export async function connectWebSocket(p: ConnectParams): Promise<WebSocket> {
  // Loaded on first use so that importing the library (and `tl-tunnel --version`) stays cheap.
  const { default: WebSocketClass } = await import('ws');
  const started = Date.now();
  const deadline = started + p.timeoutMs;
  const waitDeadline = started + (p.waitMs ?? 0);
  let allowWarm = true;
  for (let n = 0; ; n += 1) {
    const now = Date.now();
    // A wait for a service may outlast the connect timeout; each attempt still gets its own budget,
    // and when waiting, even the attempt made as the wait ends gets a fair chance to be answered.
    const floor = (p.waitMs ?? 0) > 0 ? Math.min(p.timeoutMs, MIN_WAIT_ATTEMPT_MS) : 1;
    const budget = Math.max(floor, Math.min(p.timeoutMs, Math.max(deadline, waitDeadline) - now));
    try {
      return await attempt(WebSocketClass, p, budget, allowWarm);
    } catch (error) {
      allowWarm = !(error instanceof WarmSocketDead);
      if (!allowWarm) {
        if (p.signal?.aborted) throw p.signal.reason instanceof TunnelError ? p.signal.reason : new TunnelError(ErrorCodes.INTERNAL, 'aborted');
        n -= 1;
        continue;
      }
      if (!(error instanceof TunnelError)) throw error;
      const waiting = error.code === ErrorCodes.PORT_CLOSED && Date.now() < waitDeadline;
      if (!waiting && (!error.retryable || (p.refusedIsFinal === true && refused(error)))) throw error;
      if (p.signal?.aborted) throw error;
      // While waiting, the last retry is cut short to land on the end of the wait, not skipped:
      // otherwise --wait 3 could give up after 1.5 s.
      const delay = waiting ? Math.max(1, Math.min(backoffDelay(n, 250, 2000), waitDeadline - Date.now())) : backoffDelay(n);
      if (!waiting && Date.now() + delay >= deadline) throw error;
      p.onRetry?.({ attempt: n + 1, delayMs: delay, error });
      try {
        await sleep(delay, p.signal);
      } catch {
        throw error;
      }
    }
  }
}
