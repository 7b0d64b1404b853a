import { isIP } from 'node:net';

// The same label rule as sandbox-name.ts: a sandbox id or name becomes a DNS label of the proxy
// host, so nothing else may pass.
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

export type Destination = { sandbox: string } | { refused: string };

/**
 * Which sandbox a proxied host names: one DNS label, `<label>.sandbox` or `<label>.localhost`; the
 * loopback names mean the sandbox given on the command line. Anything else is refused, so a browser
 * pointed at the proxy cannot send the web (and the credentials' reach) through it.
 */
export function destinationFor(host: string, defaultSandbox: string | undefined): Destination {
  // ASCII only: toLowerCase() maps some non-ASCII letters (the Kelvin sign) to ASCII ones.
  let name = host.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  // A fully qualified "my-app." is the same name.
  if (name.endsWith('.') && name.length > 1 && isIP(name) === 0) name = name.slice(0, -1);
  const shown = JSON.stringify(host.slice(0, 100));
  if (LOOPBACK_NAMES.has(name)) {
    return defaultSandbox === undefined ? { refused: `${shown} names the command-line sandbox, and none was given` } : { sandbox: defaultSandbox };
  }
  if (isIP(name) !== 0) return { refused: `${shown} is not a sandbox: only sandbox names are proxied` };
  const dot = name.indexOf('.');
  const label = dot < 0 ? name : name.slice(0, dot);
  const suffix = dot < 0 ? '' : name.slice(dot + 1);
  // "xn--" labels are punycode for another name than the one typed; an all-digit label is an IPv4
  // number to browsers (http://1234/ is 0.0.4.210).
  const ok = LABEL.test(label) && !label.startsWith('xn--') && !/^[0-9]+$/.test(label) && (suffix === '' || suffix === 'sandbox' || suffix === 'localhost');
  return ok ? { sandbox: label } : { refused: `${shown} is not a sandbox: use <sandbox>, <sandbox>.sandbox or <sandbox>.localhost` };
}
