import { statSync } from 'node:fs';
import { isTable, loadToml, text, type TomlTable } from './config-files.js';

export interface StoredCredentials {
  token: string;
  organization?: string;
  project?: string;
}

/**
 * The key `tl login` files a token under: the API URL without query, fragment, default port or
 * trailing slashes. Scheme and host are lower-cased by the URL parser; the path keeps its case.
 */
export function normaliseApiUrl(url: string): string {
  const trimmed = url.trim();
  try {
    const parsed = new URL(trimmed);
    parsed.search = '';
    parsed.hash = '';
    return parsed.href.replace(/\/+$/, '');
  } catch {
    return trimmed.replace(/\/+$/, '');
  }
}

function fromTable(value: unknown): StoredCredentials | undefined {
  if (!isTable(value)) return undefined;
  const token = text(value.token);
  return token === undefined ? undefined : { token, organization: text(value.organization), project: text(value.project) };
}

/** The stored login for `apiUrl`: the exact key, then any equivalent key, then the legacy top-level token. */
export function pickStoredCredentials(doc: TomlTable, apiUrl: string): StoredCredentials | undefined {
  const wanted = normaliseApiUrl(apiUrl);
  const exact = fromTable(doc[apiUrl.trim()]) ?? fromTable(doc[wanted]);
  if (exact) return exact;
  for (const [key, value] of Object.entries(doc)) {
    const found = normaliseApiUrl(key) === wanted ? fromTable(value) : undefined;
    if (found) return found;
  }
  // The older layout had one unscoped token and no scope of its own.
  const legacy = text(doc.token);
  return legacy === undefined ? undefined : { token: legacy };
}

/** Reads `credentials.toml` safely and warns when others may read it. */
export function loadStoredCredentials(path: string, apiUrl: string, warnings: string[]): StoredCredentials | undefined {
  const doc = loadToml(path, warnings, 'credentials file (run tl login again)');
  if (doc === undefined) return undefined;
  if (process.platform !== 'win32') {
    try {
      if ((statSync(path).mode & 0o077) !== 0) warnings.push(`${path} is readable by other users: run chmod 600 ${path}`);
    } catch {
      // Read a moment ago; a failing stat changes nothing about the token.
    }
  }
  return pickStoredCredentials(doc, apiUrl);
}
