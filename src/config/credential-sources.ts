import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Credentials } from './credentials.js';

export const DEFAULT_API_URL = 'https://api.tensorlake.ai';

// The TOML parser is needed only when the `tl login` file exists: load it then, synchronously,
// instead of on every start.
const require = createRequire(import.meta.url);
const parseToml = (text: string): unknown => (require('smol-toml') as typeof import('smol-toml')).parse(text);

export interface CredentialInputs {
  /** --api-key */
  apiKey?: string;
  /** --pat */
  pat?: string;
  /** Environment to read TENSORLAKE_* from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Home directory holding .config/tensorlake/credentials.toml; default os.homedir(). */
  home?: string;
}

export interface ResolvedCredentials {
  credentials: Credentials;
  /** Where the secret came from, e.g. "--api-key" or "TENSORLAKE_PAT" (never the secret). */
  source: string;
  warnings: string[];
}

export function credentialsFilePath(home = homedir()): string {
  return join(home, '.config', 'tensorlake', 'credentials.toml');
}

/** Table keys are API URLs; compare them without trailing slashes and with a lower-case origin. */
function normaliseApiUrl(url: string): string {
  try {
    const parsed = new URL(url.trim());
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`.toLowerCase();
  } catch {
    return url.trim().replace(/\/+$/, '').toLowerCase();
  }
}

interface FileEntry {
  token?: string;
  organization?: string;
  project?: string;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Reads the `tl login` file: the table for `apiUrl`, else the legacy top-level token. */
function readCredentialsFile(path: string, apiUrl: string, warnings: string[]): FileEntry | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    warnings.push(`Cannot read ${path} (${code ?? 'error'}); ignoring it`);
    return undefined;
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch {
    // The parser's message may quote the file, and so the token: say only where it is.
    warnings.push(`${path} is not valid TOML; ignoring it (run tl login again)`);
    return undefined;
  }
  if (process.platform !== 'win32') {
    try {
      if ((statSync(path).mode & 0o077) !== 0) warnings.push(`${path} is readable by other users: run chmod 600 ${path}`);
    } catch {
      // Read a moment ago; a failing stat changes nothing about the token.
    }
  }
  const wanted = normaliseApiUrl(apiUrl);
  for (const [key, value] of Object.entries(doc)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && normaliseApiUrl(key) === wanted) {
      const table = value as Record<string, unknown>;
      return { token: str(table.token), organization: str(table.organization), project: str(table.project) };
    }
  }
  const token = str(doc.token);
  return token ? { token, organization: str(doc.organization), project: str(doc.project) } : undefined;
}

/**
 * Finds the credentials the way Tensorlake's tools do: flag, then environment, then the file that
 * `tl login` wrote; at each level an API key wins over a personal access token.
 */
export function resolveCredentials(inputs: CredentialInputs = {}): ResolvedCredentials {
  const env = inputs.env ?? process.env;
  const warnings: string[] = [];
  const org = str(env.TENSORLAKE_ORGANIZATION_ID);
  const project = str(env.TENSORLAKE_PROJECT_ID);
  const withIds = (c: Credentials, source: string, file?: FileEntry): ResolvedCredentials => ({
    credentials: { ...c, organizationId: org ?? file?.organization, projectId: project ?? file?.project },
    source,
    warnings,
  });
  if (str(inputs.apiKey)) return withIds({ apiKey: inputs.apiKey }, '--api-key');
  if (str(inputs.pat)) return withIds({ pat: inputs.pat }, '--pat');
  if (str(env.TENSORLAKE_API_KEY)) return withIds({ apiKey: env.TENSORLAKE_API_KEY }, 'TENSORLAKE_API_KEY');
  if (str(env.TENSORLAKE_PAT)) return withIds({ pat: env.TENSORLAKE_PAT }, 'TENSORLAKE_PAT');
  const path = credentialsFilePath(inputs.home);
  const file = readCredentialsFile(path, str(env.TENSORLAKE_API_URL) ?? DEFAULT_API_URL, warnings);
  if (file?.token) return withIds({ pat: file.token }, path, file);
  return { credentials: {}, source: 'none', warnings };
}
