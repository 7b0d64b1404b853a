import { ErrorCodes, TunnelError, registerSecret } from '../errors.js';
import { apiKeyExample } from './shell-syntax.js';

/** What authenticates the tunnel. An API key wins over a personal access token. */
export interface Credentials {
  /** Project API key (`tl_apiKey_...`), sent as Bearer. */
  apiKey?: string;
  /** Personal access token, sent as Bearer when there is no API key. */
  pat?: string;
  /** Sent as X-Forwarded-Organization-Id. */
  organizationId?: string;
  /** Sent as X-Forwarded-Project-Id. */
  projectId?: string;
  /** Where the token came from ("--api-key", "TENSORLAKE_PAT", a file path), named when it is refused. */
  source?: string;
}

/** What to tell a person whose token was refused: the place it really came from. */
export function credentialsHint(credentials: Credentials): string {
  const what = credentials.apiKey ? 'API key' : 'access token';
  const source = credentials.source;
  if (source === undefined) return 'set a valid key with TENSORLAKE_API_KEY or --api-key';
  if (source.endsWith('credentials.toml')) return `the ${what} stored by tl login (${source}) was refused: run tl login again, or set TENSORLAKE_API_KEY`;
  if (source.startsWith('-')) return `the ${what} from ${source} was refused: check ${source}`;
  if (/^[A-Z_]+$/.test(source)) return `the ${what} from ${source} was refused: check ${source} (or pass ${credentials.apiKey ? '--api-key' : '--pat'})`;
  return `the ${what} from ${source} was refused: check apikey under [tensorlake] in ${source}`;
}

// Header values must not smuggle in extra headers; keys are opaque tokens without spaces.
const TOKEN = /^[\x21-\x7e]+$/;

/** Builds the authentication headers, refusing empty or malformed secrets without quoting them. */
export function credentialHeaders(credentials: Credentials): Record<string, string> {
  const token = credentials.apiKey || credentials.pat;
  if (!token) {
    throw new TunnelError(ErrorCodes.NO_CREDENTIALS, `No API key: set TENSORLAKE_API_KEY or pass --api-key ${apiKeyExample()}`);
  }
  registerSecret(credentials.apiKey);
  registerSecret(credentials.pat);
  if (!TOKEN.test(token)) {
    throw new TunnelError(ErrorCodes.USAGE, `The ${credentials.apiKey ? 'API key' : 'access token'} contains spaces or control characters: check ${credentials.source ?? 'TENSORLAKE_API_KEY or --api-key'}`);
  }
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  for (const [name, value, header] of [
    ['organization id', credentials.organizationId, 'x-forwarded-organization-id'],
    ['project id', credentials.projectId, 'x-forwarded-project-id'],
  ] as const) {
    if (value === undefined || value === '') continue;
    if (!TOKEN.test(value)) throw new TunnelError(ErrorCodes.USAGE, `The ${name} contains spaces or control characters`);
    headers[header] = value;
  }
  return headers;
}
