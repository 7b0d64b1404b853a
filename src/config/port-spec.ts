import { isIP } from 'node:net';
import { quoteInput, usageError } from '../errors.js';

/** One local listener forwarded to one port inside the sandbox. */
export interface PortMapping {
  /** Address to bind; undefined means loopback (127.0.0.1 and ::1). */
  address?: string;
  /** Local port; 0 lets the system choose a free one. */
  localPort: number;
  /** Port on 127.0.0.1 inside the sandbox, 1..65535. */
  remotePort: number;
}

const EXAMPLES = 'e.g. 5432, 15432:5432, :5432 or 127.0.0.1:15432:5432';

/** ` in port spec "..."`, cut like every quoted input. */
function inSpec(spec: string): string {
  return ` in port spec ${quoteInput(spec)}`;
}

function parsePort(text: string, what: 'local' | 'remote', spec: string): number {
  // Strict digits: "+80", "80.0", "0x50" and " 80" are typos, not ports.
  if (!/^[0-9]{1,5}$/.test(text)) {
    throw usageError(`Invalid ${what} port ${quoteInput(text)}${inSpec(spec)}: use a number from ${what === 'local' ? 0 : 1} to 65535 (${EXAMPLES})`);
  }
  const port = Number(text);
  if (port > 65535) {
    throw usageError(`Invalid ${what} port ${port}${inSpec(spec)}: ports go up to 65535 (${EXAMPLES})`);
  }
  if (what === 'remote' && port === 0) {
    throw usageError(`Invalid remote port 0${inSpec(spec)}: the sandbox port must be 1 to 65535 (${EXAMPLES})`);
  }
  return port;
}

/** Validates a bind address: an IP literal or "localhost" (which means the loopback default). */
export function parseBindAddress(text: string, context: string): string | undefined {
  const bracketed = text.startsWith('[') && text.endsWith(']');
  const bare = bracketed ? text.slice(1, -1) : text;
  if (!bracketed && bare.toLowerCase() === 'localhost') return undefined;
  // Brackets belong to IPv6 literals only: "[127.0.0.1]" or "[localhost]" is a typo.
  if (isIP(bare) === 0 || (bracketed && isIP(bare) !== 6)) {
    throw usageError(`Invalid bind address ${quoteInput(text)} in ${context}: use an IP address such as 127.0.0.1, ::1 or 0.0.0.0`);
  }
  return bare;
}

/**
 * ssh -L's [BIND:]LOCAL:HOST:REMOTE: a host (a name, an IPv4 address or a bracketed IPv6 one)
 * between two ports (ours is ADDRESS:LOCAL:REMOTE, ports last). LOCAL may be empty (a free port).
 */
const SSH_FORM = /^(?:(\[[^\]]*\]|[^:[\]]+):)?([0-9]{0,5}):(\[[^\]]*\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[^:[\]]*[^0-9:[\].][^:[\]]*):([0-9]{1,5})$/;
/** Where the tunnel ends: the sandbox's own loopback, which is all such a host can mean here. */
const SANDBOX_LOOPBACK = new Set(['localhost', '127.0.0.1']);

/** Rewrites ssh's form into ours, refusing a host other than the sandbox's own loopback. */
function fromSshForm(spec: string, match: RegExpExecArray): string {
  const [, bind, local, host, remote] = match as unknown as [string, string | undefined, string, string, string];
  if (!SANDBOX_LOOPBACK.has(host.toLowerCase())) {
    throw usageError(`Invalid port spec ${quoteInput(spec)}: the tunnel ends inside the sandbox, on its 127.0.0.1, so the host can only be localhost or 127.0.0.1 (not ${quoteInput(host, 40)}); write ${bind === undefined ? '' : `${bind}:`}${local}:${remote}`);
  }
  return `${bind === undefined ? '' : `${bind}:`}${local}:${remote}`;
}

/**
 * Parses REMOTE, LOCAL:REMOTE, :REMOTE, 0:REMOTE, ADDRESS:LOCAL:REMOTE and [IPv6]:LOCAL:REMOTE, and
 * ssh's LOCAL:localhost:REMOTE (with an optional bind address), which means LOCAL:REMOTE here.
 * Throws a TL_ERR_USAGE error naming the spec for anything else.
 */
export function parsePortSpec(spec: string): PortMapping {
  if (typeof spec !== 'string' || spec.length === 0) {
    throw usageError(`Empty port spec: give the sandbox port to forward (${EXAMPLES})`);
  }
  const ssh = SSH_FORM.exec(spec);
  if (ssh !== null) return parsePortSpec(fromSshForm(spec, ssh));
  let address: string | undefined;
  let rest = spec;
  const quoted = quoteInput(spec);
  if (spec.startsWith('[')) {
    const close = spec.indexOf(']');
    if (close < 0 || spec[close + 1] !== ':') {
      throw usageError(`Invalid port spec ${quoted}: write IPv6 addresses as [::1]:LOCAL:REMOTE`);
    }
    address = parseBindAddress(spec.slice(0, close + 1), `port spec ${quoted}`);
    rest = spec.slice(close + 2);
    if (rest.split(':').length !== 2) {
      throw usageError(`Invalid port spec ${quoted}: after the address give LOCAL:REMOTE, as in [::1]:15432:5432`);
    }
  }
  const parts = rest.split(':');
  if (address === undefined && parts.length > 3) {
    // "::1:15432:5432": an IPv6 address needs brackets to be told from the ports.
    const prefix = parts.slice(0, -2).join(':');
    if (isIP(prefix) === 6) {
      throw usageError(`Invalid port spec ${quoted}: put the IPv6 address in brackets, as in [${prefix}]:${parts.slice(-2).join(':')}`);
    }
  }
  if (address === undefined && parts.length === 3) {
    address = parseBindAddress(parts.shift() as string, `port spec ${quoted}`);
  }
  if (parts.length === 1) {
    const port = parsePort(parts[0] as string, 'remote', spec);
    return { address, localPort: port, remotePort: port };
  }
  if (parts.length === 2) {
    const [local, remote] = parts as [string, string];
    return {
      address,
      localPort: local === '' ? 0 : parsePort(local, 'local', spec),
      remotePort: parsePort(remote, 'remote', spec),
    };
  }
  throw usageError(`Invalid port spec ${quoted}: expected REMOTE, LOCAL:REMOTE or ADDRESS:LOCAL:REMOTE (${EXAMPLES})`);
}

/** Formats a mapping back into the canonical spec text (round-trips with parsePortSpec). */
export function formatPortSpec(mapping: PortMapping): string {
  const local = `${mapping.localPort}:${mapping.remotePort}`;
  if (mapping.address === undefined) return local;
  return isIP(mapping.address) === 6 ? `[${mapping.address}]:${local}` : `${mapping.address}:${local}`;
}

/** Parses several specs, refusing two that would bind the same local port. */
export function parsePortSpecs(specs: readonly string[], defaultAddress?: string): PortMapping[] {
  if (specs.length === 0) {
    throw usageError(`Missing port spec: give at least one sandbox port to forward (${EXAMPLES})`);
  }
  const mappings = specs.map((spec) => {
    const mapping = parsePortSpec(spec);
    return mapping.address === undefined && defaultAddress !== undefined ? { ...mapping, address: defaultAddress } : mapping;
  });
  // Two mappings clash when they share a local port and their addresses overlap: the loopback
  // default covers 127.0.0.1 and ::1, and a wildcard covers everything.
  const overlaps = (a?: string, b?: string): boolean =>
    a === b || [a, b].some((x) => x === '0.0.0.0' || x === '::') ||
    (a === undefined && (b === '127.0.0.1' || b === '::1')) || (b === undefined && (a === '127.0.0.1' || a === '::1'));
  mappings.forEach((mapping, i) => {
    if (mapping.localPort === 0) return;
    const j = mappings.findIndex((other, k) => k < i && other.localPort === mapping.localPort && overlaps(other.address, mapping.address));
    if (j >= 0) {
      throw usageError(`Local port ${mapping.localPort} is used twice (${quoteInput(specs[j] ?? '')} and ${quoteInput(specs[i] ?? '')}): give each mapping its own local port, e.g. ${mapping.localPort === 65535 ? 65534 : mapping.localPort + 1}:${mapping.remotePort}, or :${mapping.remotePort} for a free one`);
    }
  });
  return mappings;
}
