import { redact, sanitizeText } from '../index.js';

/** Chalk's colour codes: the only escape sequences our own lines are allowed to contain. */
const SGR = /(\x1b\[[0-9;]*m)/;

/**
 * The last guard before a human line reaches the terminal: whatever a peer managed to put into it
 * (ESC sequences that retitle or clear the screen, CR/LF that forge lines, bidi overrides) becomes
 * spaces, while our own colours survive. Long secrets and key shapes are redacted.
 */
export function terminalLine(line: string): string {
  return redact(line)
    .split(SGR)
    .map((part, i) => (i % 2 === 1 ? part : sanitizeText(part, Number.POSITIVE_INFINITY)))
    .join('');
}

/**
 * Redacts every string of a JSON event before it is serialised: numbers are never touched (a
 * numeric password must not turn "bytesSent":1424242 into broken JSON), strings stay faithful
 * otherwise (JSON escapes their control characters).
 */
export function redactFields<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactFields(v)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactFields(v)])) as T;
  }
  return value;
}
