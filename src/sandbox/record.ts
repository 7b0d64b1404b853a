import { ErrorCodes, TunnelError, redact } from '../errors.js';

/** What tl-tunnel uses from a sandbox record; every other field is ignored. */
export interface SandboxRecord {
  /** The canonical id (`sandbox_id`, or `id`). */
  id: string;
  name?: string;
  /** pending, running, snapshotting, suspending, suspended, terminated, or anything newer. */
  status: string;
  /** The proxy base for this sandbox, possibly regional. */
  sandboxUrl?: string;
  routingHint?: string;
  terminationReason?: string;
  /** Why it failed, from `error_details` (a string, or its message, detail, error or reason). */
  errorDetails?: string;
  /** The image it was started from (to explain ImageNotFound). */
  image?: string;
}

/** Peer text for a message: no control characters (terminal escapes, forged lines), bounded length. */
export function peerText(value: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const clean = redact(value).replace(/[\x00-\x1f\x7f-\x9f]/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function str(doc: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const value = doc[key];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return undefined;
}

// The id and hint travel in header values and the id in a Host name: label characters only.
const ID = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const HINT = /^[\x21-\x7e]{1,512}$/;

/** Parses the lookup's answer; anything that is not a usable record is a TL_ERR_LOOKUP. */
export function parseSandboxRecord(text: string, requested: string, where: string): SandboxRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new TunnelError(ErrorCodes.LOOKUP, `The sandbox lookup at ${where} did not answer with JSON; is it a Tensorlake sandbox API? (TENSORLAKE_SANDBOX_API_URL / --api-url)`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new TunnelError(ErrorCodes.LOOKUP, `The sandbox lookup at ${where} answered with something that is not a sandbox record`);
  }
  const record = doc as Record<string, unknown>;
  // Without an id, the identifier as typed, as upstream does.
  const id = str(record, 'sandbox_id', 'id') ?? requested;
  if (!ID.test(id) && id !== requested) throw new TunnelError(ErrorCodes.LOOKUP, `The sandbox record for ${requested} from ${where} has an id that is not a valid sandbox id ("${peerText(id, 80)}")`);
  const hint = str(record, 'routing_hint');
  return {
    id,
    name: str(record, 'name'),
    status: (str(record, 'status') ?? 'unknown').toLowerCase(),
    sandboxUrl: str(record, 'sandbox_url', 'sandboxUrl'),
    routingHint: hint !== undefined && HINT.test(hint) ? hint : undefined,
    terminationReason: str(record, 'termination_reason'),
    errorDetails: errorDetailsOf(record.error_details),
    image: str(record, 'image'),
  };
}

/** `error_details` as upstream reads it: a string, or the first of message, detail, error, reason. */
function errorDetailsOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() || undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return str(value as Record<string, unknown>, 'message', 'detail', 'error', 'reason');
}

/**
 * Why a sandbox ended, as upstream explains it: its error details first, then its termination
 * reason, where ImageNotFound names the image. Cleaned and capped: it is the peer's text.
 */
export function failureDetail(record: SandboxRecord): string | undefined {
  if (record.errorDetails) return peerText(record.errorDetails, 200);
  if (record.terminationReason === 'ImageNotFound' && record.image) return `image not found: ${peerText(record.image, 120)}`;
  return record.terminationReason ? peerText(record.terminationReason, 120) : undefined;
}
