import type { IncomingMessage, ServerResponse } from 'node:http';
import { usageError } from '../errors.js';
import { makeAuthChecker } from './auth.js';

/** One sandbox of the reference control plane, as given in --sandboxes FILE or the sandboxes option. */
export interface SandboxRecordInput {
  /** Canonical id (`sandbox_id` is accepted too). */
  id: string;
  name?: string;
  /** Default running. */
  status?: string;
  routing_hint?: string;
  termination_reason?: string;
  /** Shown once the sandbox has ended (terminated or timeout): a string or { message | detail | error | reason }. */
  error_details?: unknown;
  /** The image the sandbox was started from. */
  image?: string;
  /** The proxy base the record names; default this server's own URL; null leaves the field out. */
  sandbox_url?: string | null;
  /** With a personal access token, requests must name this organization and project. */
  organization?: string;
  project?: string;
  /** Status changes on a clock that starts at the first lookup and restarts at each change, e.g. [{ "after_ms": 500, "status": "running" }]. */
  transitions?: { after_ms: number; status: string }[];
  /** After a resume: pending for this long, then running. Default 0. */
  resume_ms?: number;
}

interface Sandbox {
  input: SandboxRecordInput;
  status: string;
  /** When the status last changed; a record's clock starts at its first lookup, so a slow client still sees every status. */
  changedAt: number | undefined;
  /** Transitions still to come, relative to changedAt. */
  next: { after_ms: number; status: string }[];
}

export interface ControlPlaneOptions {
  /** The API key the server accepts. */
  token: string;
  /** A personal access token the server accepts, which must carry the organization and project headers. */
  pat?: string;
  /** This server's base URL, for records without sandbox_url. */
  selfUrl: () => string;
}

/** Statuses a sandbox never leaves. */
const ENDED = new Set(['terminated', 'timeout']);

const ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Checks the records given to the server; a bad file is a usage error naming the record. */
export function checkSandboxRecords(records: unknown): SandboxRecordInput[] {
  if (!Array.isArray(records)) throw usageError('Invalid sandboxes: expected a JSON array of records such as [{ "id": "sbx1", "name": "my-db", "status": "running" }]');
  return records.map((r: unknown, i) => {
    const rec = r as Record<string, unknown> | null;
    const id = typeof rec?.id === 'string' ? rec.id : rec?.sandbox_id;
    if (typeof id !== 'string' || !ID.test(id)) throw usageError(`Invalid sandboxes[${i}]: it needs an id of lower-case letters, digits and inner hyphens`);
    return { ...(rec as object), id } as SandboxRecordInput;
  });
}

/** A path segment decoded, or undefined when it is not valid percent-encoded UTF-8 (`%ZZ`, `%C0`). */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch (err) {
    if (err instanceof URIError) return undefined;
    throw err;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The part of Tensorlake's sandbox API that tl-tunnel uses, over records given to the reference
 * server: GET /sandboxes/<id-or-name>, POST /sandboxes/<id>/resume (and /suspend), with the scope
 * checks a personal access token meets. Tunnels to a sandbox that is not running are refused.
 */
export class ControlPlane {
  private readonly sandboxes: Sandbox[];
  private readonly isKey: (header: string | undefined) => boolean;
  private readonly isPat: (header: string | undefined) => boolean;
  /** Whether records were given: only then are tunnels routed by them. */
  private readonly routing: boolean;

  constructor(
    records: readonly SandboxRecordInput[] | undefined,
    private readonly options: ControlPlaneOptions,
  ) {
    this.routing = records !== undefined;
    this.sandboxes = checkSandboxRecords(records ?? []).map((input) => ({ input, status: input.status ?? 'running', changedAt: undefined, next: [...(input.transitions ?? [])] }));
    this.isKey = makeAuthChecker(options.token);
    this.isPat = options.pat ? makeAuthChecker(options.pat) : () => false;
  }

  /** Whether this Authorization header is one the server accepts (key or PAT). */
  authorized(header: string | undefined): boolean {
    return this.isKey(header) || this.isPat(header);
  }

  private setStatus(s: Sandbox, status: string, next: Sandbox['next'] = []): void {
    s.status = status;
    s.changedAt = Date.now();
    s.next = next;
  }

  /** Applies the transitions whose time has come (lazily: no timers to clean up). */
  private settle(s: Sandbox): void {
    s.changedAt ??= Date.now();
    while (s.next.length > 0 && Date.now() - s.changedAt >= (s.next[0]?.after_ms ?? 0)) {
      const t = s.next[0] as { after_ms: number; status: string };
      s.status = t.status;
      s.changedAt += t.after_ms;
      s.next = s.next.slice(1);
    }
  }

  private find(idOrName: string): Sandbox | undefined {
    const wanted = idOrName.toLowerCase();
    const byId = this.sandboxes.find((x) => x.input.id === wanted);
    if (byId) {
      this.settle(byId);
      return byId;
    }
    // A name belongs to one live sandbox at a time: once one is terminated, a new sandbox may take
    // its name, and the name then means the new one.
    const named = this.sandboxes.filter((x) => x.input.name?.toLowerCase() === wanted);
    for (const s of named) this.settle(s);
    return named.find((s) => !ENDED.has(s.status)) ?? named[0];
  }

  /** 401/403 for a request this server would not serve; undefined when it may go on. */
  private scopeRefusal(req: IncomingMessage, s: Sandbox | undefined): { status: number; error: string; code: string } | 'hidden' | undefined {
    const auth = req.headers.authorization;
    if (!this.authorized(auth)) return { status: 401, error: 'Missing or invalid bearer token', code: 'UNAUTHORIZED' };
    if (!this.isPat(auth)) return undefined;
    const org = req.headers['x-forwarded-organization-id'];
    const project = req.headers['x-forwarded-project-id'];
    if (typeof org !== 'string' || typeof project !== 'string') {
      return { status: 403, error: 'A personal access token needs X-Forwarded-Organization-Id and X-Forwarded-Project-Id', code: 'FORBIDDEN' };
    }
    // Another project's sandbox is not found, as if it did not exist.
    if (s && ((s.input.organization && s.input.organization !== org) || (s.input.project && s.input.project !== project))) return 'hidden';
    return undefined;
  }

  private record(s: Sandbox): Record<string, unknown> {
    const i = s.input;
    const sandboxUrl = i.sandbox_url === undefined ? this.options.selfUrl() : i.sandbox_url;
    return {
      sandbox_id: i.id,
      id: i.id,
      ...(i.name ? { name: i.name } : {}),
      status: s.status,
      ...(sandboxUrl === null ? {} : { sandbox_url: sandboxUrl }),
      ...(i.routing_hint ? { routing_hint: i.routing_hint } : {}),
      ...(i.termination_reason && ENDED.has(s.status) ? { termination_reason: i.termination_reason } : {}),
      ...(i.error_details !== undefined && ENDED.has(s.status) ? { error_details: i.error_details } : {}),
      ...(i.image ? { image: i.image } : {}),
      exposed_ports: [],
      // Clients must ignore fields they do not know.
      created_at: new Date(s.changedAt ?? Date.now()).toISOString(),
    };
  }

  /** Serves /sandboxes/... requests; returns false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    // Also a local stack's namespaced paths: /v1/namespaces/<namespace>/sandboxes/...
    const match = /^(?:\/v1\/namespaces\/[^/?#]+)?\/sandboxes\/([^/?#]+)(?:\/(resume|suspend))?\/?(?:\?.*)?$/.exec(req.url ?? '');
    if (!match) return false;
    const idOrName = decodeSegment(match[1] as string);
    if (idOrName === undefined) {
      send(res, 400, { error: 'The sandbox in the path is not valid percent-encoding', code: 'BAD_REQUEST' });
      return true;
    }
    const s = this.find(idOrName);
    const refusal = this.scopeRefusal(req, s);
    if (refusal !== undefined && refusal !== 'hidden') {
      send(res, refusal.status, { error: refusal.error, code: refusal.code });
      return true;
    }
    if (!s || refusal === 'hidden') {
      send(res, 404, { error: 'sandbox not found', code: 'NOT_FOUND' });
      return true;
    }
    const action = match[2];
    if (action === undefined) {
      if (req.method === 'GET') send(res, 200, this.record(s));
      else send(res, 405, { error: 'method not allowed', code: 'METHOD_NOT_ALLOWED' });
      return true;
    }
    if (req.method !== 'POST') {
      send(res, 405, { error: 'method not allowed', code: 'METHOD_NOT_ALLOWED' });
      return true;
    }
    if (ENDED.has(s.status)) {
      send(res, 409, { error: `sandbox is terminated`, code: 'CONFLICT' });
      return true;
    }
    if (action === 'resume' && s.status === 'suspended') {
      const wait = s.input.resume_ms ?? 0;
      if (wait > 0) this.setStatus(s, 'pending', [{ after_ms: wait, status: 'running' }]);
      else this.setStatus(s, 'running');
    } else if (action === 'suspend' && s.status !== 'suspended') {
      this.setStatus(s, 'suspended');
    }
    send(res, 200, this.record(s));
    return true;
  }

  /**
   * Whether a tunnel upgrade may reach its sandbox: named by X-Tensorlake-Sandbox-Id, else by the
   * first label of Host (`<id>.local`, `<id>.sandbox...`). Unknown: 404; not running: 502.
   */
  refuseTunnel(req: IncomingMessage): { status: number; error: string; code: string } | undefined {
    const header = req.headers['x-tensorlake-sandbox-id'];
    const name = typeof header === 'string' ? header : (req.headers.host ?? '').split('.')[0] ?? '';
    const s = this.find(name);
    const refusal = this.scopeRefusal(req, s);
    if (refusal !== undefined && refusal !== 'hidden') return refusal;
    if (!this.routing) return undefined;
    if (!s || refusal === 'hidden' || ENDED.has(s.status)) return { status: 404, error: 'sandbox not found', code: 'NOT_FOUND' };
    if (s.status !== 'running') return { status: 502, error: `sandbox is ${s.status}`, code: 'SANDBOX_NOT_RUNNING' };
    return undefined;
  }
}
