import { ErrorCodes, TunnelError, registerSecret } from '../errors.js';

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
}

// Header values must not smuggle in extra headers; keys are opaque tokens without spaces.
const TOKEN = /^[\x21-\x7e]+$/;

/** Builds the authentication headers, refusing empty or malformed secrets without quoting them. */
export function credentialHeaders(credentials: Credentials): Record<string, string> {
  const token = credentials.apiKey || credentials.pat;
  if (!token) {
    throw new TunnelError(ErrorCodes.NO_CREDENTIALS, 'No API key: set TENSORLAKE_API_KEY or pass --api-key (e.g. export TENSORLAKE_API_KEY=tl_apiKey_...)');
  }
  registerSecret(credentials.apiKey);
  registerSecret(credentials.pat);
  if (!TOKEN.test(token)) {
    throw new TunnelError(ErrorCodes.USAGE, `The ${credentials.apiKey ? 'API key' : 'access token'} contains spaces or control characters: check TENSORLAKE_API_KEY or --api-key`);
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
