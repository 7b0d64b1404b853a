import type { Agent } from 'node:http';
import { ErrorCodes, TunnelError } from '../errors.js';
import { credentialHeaders, credentialsHint, type Credentials } from '../config/credentials.js';
import { VERSION } from '../version.js';
import { httpCall, type HttpAnswer } from './http-json.js';
import { parseSandboxRecord, peerText, type SandboxRecord } from './record.js';

export interface SandboxApiOptions {
  /** Lifecycle API base, checked (checkLookupBase). */
  base: string;
  credentials: Credentials;
  agent?: Agent;
  /** Deadline for each request. */
  timeoutMs: number;
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL|EPROTO)/;
/** The control plane's "busy, ask again" answers: rate limits and the edge's gateway errors. */
const BUSY = new Set([429, 500, 502, 503, 504]);

function bodyError(text: string): string {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const error = value?.error ?? value?.message;
    if (typeof error === 'string') return `: ${peerText(error)}`;
  } catch {
    // No JSON body: the status says it all.
  }
  return '';
}

/** The sandbox lifecycle API: the record of one sandbox, and resuming it. */
export class SandboxApi {
  readonly host: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly options: SandboxApiOptions) {
    this.host = new URL(options.base).host;
    this.headers = { ...credentialHeaders(options.credentials), accept: 'application/json', 'user-agent': `tl-tunnel/${VERSION}` };
  }

  private async call(method: 'GET' | 'POST', path: string, signal?: AbortSignal): Promise<HttpAnswer> {
    try {
      return await httpCall({
        method,
        url: `${this.options.base}${path}`,
        headers: method === 'POST' ? { ...this.headers, 'content-length': '0' } : this.headers,
        agent: this.options.agent,
        timeoutMs: this.options.timeoutMs,
        signal,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const code = e.code ?? '';
      const details = { host: this.host, detail: e.message };
      if (code === 'ABORT_ERR') throw signal?.reason instanceof TunnelError ? signal.reason : new TunnelError(ErrorCodes.INTERNAL, 'aborted', details);
      if (code === 'ETIMEDOUT') throw new TunnelError(ErrorCodes.TIMEOUT, `The sandbox API at ${this.host} did not answer in time`, { ...details, retryable: true });
      if (TLS_CODES.test(code)) throw new TunnelError(ErrorCodes.TLS, `TLS with the sandbox API at ${this.host} failed (${code}); for a private CA set NODE_EXTRA_CA_CERTS`, details);
      throw new TunnelError(ErrorCodes.UNREACHABLE, `Cannot reach the sandbox API at ${this.host} (${code || e.message})`, { ...details, retryable: true });
    }
  }

  private statusError(answer: HttpAnswer, what: string, sandbox: string): TunnelError {
    const { status } = answer;
    const said = bodyError(answer.text);
    if (status === 401 || status === 403) {
      return new TunnelError(ErrorCodes.AUTH, `The sandbox API at ${this.host} rejected the credentials (${status})${said}: ${credentialsHint(this.options.credentials)}`, { status, host: this.host });
    }
    if (status === 404) {
      return new TunnelError(ErrorCodes.SANDBOX_NOT_FOUND, `No sandbox named ${sandbox} in this project (404 from ${this.host})`, { status, host: this.host });
    }
    return new TunnelError(ErrorCodes.LOOKUP, `${what} ${sandbox} at ${this.host} failed: HTTP ${status}${said}`, { status, host: this.host, retryable: BUSY.has(status) });
  }

  /** GET <base>/sandboxes/<id-or-name>. */
  async get(sandbox: string, signal?: AbortSignal): Promise<SandboxRecord> {
    const answer = await this.call('GET', `/sandboxes/${encodeURIComponent(sandbox)}`, signal);
    if (answer.status < 200 || answer.status > 299) throw this.statusError(answer, 'Looking up sandbox', sandbox);
    return parseSandboxRecord(answer.text, sandbox, this.host);
  }

  /** POST <base>/sandboxes/<id>/resume. */
  async resume(id: string, signal?: AbortSignal): Promise<void> {
    const answer = await this.call('POST', `/sandboxes/${encodeURIComponent(id)}/resume`, signal);
    if (answer.status < 200 || answer.status > 299) throw this.statusError(answer, 'Resuming sandbox', id);
  }
}
