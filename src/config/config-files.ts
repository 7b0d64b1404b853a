import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readSmallTextFile } from './safe-read.js';

// The TOML parser loads only when a config file exists, synchronously, instead of on every start.
const require = createRequire(import.meta.url);
const parseToml = (text: string): unknown => (require('smol-toml') as typeof import('smol-toml')).parse(text);

export type TomlTable = Record<string, unknown>;

/** ~/.config/tensorlake, where `tl` keeps its global config and `tl login` its credentials. */
export function configDir(home: string): string {
  return join(home, '.config', 'tensorlake');
}

export function globalConfigPath(home: string): string {
  return join(configDir(home), '.tensorlake_config');
}

export function credentialsFilePathIn(home: string): string {
  return join(configDir(home), 'credentials.toml');
}

/** The nearest `.tensorlake/config.toml` at or above `cwd`, as `tl` searches for it. */
export function findLocalConfig(cwd: string): string | undefined {
  for (let dir = cwd; ; dir = dirname(dir)) {
    const candidate = join(dir, '.tensorlake', 'config.toml');
    try {
      statSync(candidate);
      return candidate;
    } catch {
      // Not here: look one level up.
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Loads a TOML file safely; missing is silent, anything wrong is one warning naming the file. */
export function loadToml(path: string | undefined, warnings: string[], what: string): TomlTable | undefined {
  if (path === undefined) return undefined;
  const text = readSmallTextFile(path, warnings, what);
  if (text === undefined) return undefined;
  try {
    const doc = parseToml(text);
    return doc !== null && typeof doc === 'object' ? (doc as TomlTable) : undefined;
  } catch {
    // The parser's message may quote the file, and so a token: say only where it is.
    warnings.push(`${path} is not valid TOML; ignoring this ${what}`);
    return undefined;
  }
}

/** A trimmed, non-empty string, or undefined. */
export function text(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

export function isTable(value: unknown): value is TomlTable {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date);
}

/** `a.b` in a TOML document, when it is a string. */
export function nested(doc: TomlTable | undefined, key: string): string | undefined {
  let current: unknown = doc;
  for (const part of key.split('.')) {
    if (!isTable(current)) return undefined;
    current = current[part];
  }
  return text(current);
}
