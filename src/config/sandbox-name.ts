import { quoteInput, usageError } from '../errors.js';

// A sandbox id or name becomes a DNS label of the proxy host, so only label characters pass:
// anything else could move the request (and the key) to another host.
// Checked before lower-casing: toLowerCase() maps some non-ASCII letters (the Kelvin sign U+212A)
// to ASCII ones, which would let them through.
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Validates a sandbox id or name and returns it lower-cased. */
export function parseSandboxName(input: string): string {
  const name = typeof input === 'string' ? input : '';
  // "xn--" labels are punycode: the URL parser decodes them (or refuses them), so the host would
  // not be the one typed.
  if (!LABEL.test(name) || /^xn--/i.test(name)) {
    const shown = quoteInput(typeof input === 'string' ? input : String(input));
    throw usageError(`Invalid sandbox ${shown}: use the sandbox id or name, 1 to 63 letters, digits and inner hyphens (e.g. sbx-123 or my-sandbox)`);
  }
  return name.toLowerCase();
}
