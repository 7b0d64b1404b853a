import { quoteInput, redact, usageError } from '../errors.js';

/**
 * What a sandbox id or name may hold, as typed: the control plane judges it (and answers 404 for a
 * name it does not know), as Tensorlake's own tools let it. Only what would change where the
 * request goes is refused: `/`, `?`, `#` and `%` would move it to another path of the lookup URL,
 * and spaces, control or non-ASCII characters cannot travel in a header.
 */
const TYPED = /^[\x21-\x7e]{1,128}$/;
const UNSAFE = /[/?#%\\]/;

/** Validates a sandbox id or name and returns it as typed. */
export function parseSandboxName(input: string): string {
  const name = typeof input === 'string' ? input : '';
  // A key pasted into the wrong place must not travel in a lookup's path (where servers log it).
  if (name !== '' && redact(name) !== name) throw usageError('Invalid sandbox: that looks like an API key or token, not a sandbox id or name (pass the key with --api-key or TENSORLAKE_API_KEY)');
  if (!TYPED.test(name) || UNSAFE.test(name)) {
    const shown = quoteInput(typeof input === 'string' ? input : String(input));
    throw usageError(`Invalid sandbox ${shown}: use the sandbox id or name (e.g. sbx-123 or my-sandbox), up to 128 characters, without spaces, /, ?, #, % or \\`);
  }
  return name;
}

// A DNS label: checked before lower-casing, since toLowerCase() maps some non-ASCII letters (the
// Kelvin sign U+212A) to ASCII ones.
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * An identifier that becomes part of a host name (`<id>.sandbox.tensorlake.ai`, `Host: <id>.local`),
 * lower-cased; anything but a DNS label could move the request, and the key, to another host.
 * "xn--" labels are punycode: the URL parser decodes them, so the host would not be the one typed.
 */
export function hostLabel(id: string): string {
  if (!LABEL.test(id) || /^xn--/i.test(id)) {
    throw usageError(`Sandbox ${quoteInput(id)} cannot be part of a host name: that needs 1 to 63 letters, digits and inner hyphens (use the sandbox id, or a proxy base that does not name the sandbox in its host)`);
  }
  return id.toLowerCase();
}
