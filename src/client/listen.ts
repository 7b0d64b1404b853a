import { createServer, type Server, type Socket } from 'node:net';
import { ErrorCodes, TunnelError } from '../errors.js';
import type { PortMapping } from '../config/port-spec.js';
import { formatHostPort } from '../config/host-port.js';
import { accessDeniedReason, wildcardConflict } from './bind-checks.js';

export interface BoundListener {
  server: Server;
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface BindResult {
  listeners: BoundListener[];
  /** Loopback families that could not be bound (the mapping still works on the others). */
  skipped: { address: string; error: NodeJS.ErrnoException }[];
}

const LOOPBACK = ['127.0.0.1', '::1'] as const;
/** Errors that mean "this machine has no such address": skip it quietly. */
const NO_ADDRESS = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT']);

async function listenOn(address: string, port: number, onConnection: (socket: Socket) => void, onError?: (err: Error) => void): Promise<BoundListener> {
  const conflict = await wildcardConflict(address, port);
  if (conflict !== undefined) throw conflict;
  return new Promise((resolve, reject) => {
    // pauseOnConnect: no byte is read before the tunnel is open; noDelay: interactive protocols.
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, onConnection);
    server.once('error', reject);
    server.listen({ host: address, port, ipv6Only: address === '::1', exclusive: true }, () => {
      server.off('error', reject);
      // A failed accept (EMFILE when libuv has no reserve descriptor left) is reported, not thrown.
      server.on('error', (err) => onError?.(err));
      const bound = server.address();
      if (bound === null || typeof bound === 'string') {
        reject(new Error('listener has no address'));
        return;
      }
      resolve({ server, address: bound.address, family: bound.family === 'IPv6' ? 'IPv6' : 'IPv4', port: bound.port });
    });
  });
}

/** `freeOn`: the other loopback address, which was free (so `--address` could take just that one). */
function listenError(address: string, port: number, mapping: PortMapping, err: NodeJS.ErrnoException, freeOn?: string): TunnelError {
  const shown = formatHostPort(address, port);
  const why =
    err.code === 'EADDRINUSE' ? 'the port is already in use'
    : err.code === 'EACCES' ? accessDeniedReason()
    : err.code === 'EADDRNOTAVAIL' ? 'this machine has no such address'
    : err.code === 'EMFILE' || err.code === 'ENFILE' ? `out of file descriptors (${err.code}); raise the limit (ulimit -n)`
    : (err.code ?? err.message);
  // A free port cannot help with an address this machine does not have; remotePort 0 is a
  // listener that serves no single remote port (proxy mode).
  const hint =
    err.code === 'EADDRNOTAVAIL' ? 'bind an address of this machine (127.0.0.1, ::1, 0.0.0.0 or one of its interfaces)'
    : err.code === 'EMFILE' || err.code === 'ENFILE' ? ''
    : mapping.remotePort > 0 ? `try :${mapping.remotePort} to pick a free local port${freeOn === undefined ? '' : `, or --address ${freeOn} to forward on ${freeOn} only`}`
    : 'try another port (0 picks a free one)';
  return new TunnelError(ErrorCodes.LISTEN, `Cannot listen on ${shown}: ${why}${hint ? `; ${hint}` : ''}`, { detail: err.message });
}

export function closeListeners(listeners: readonly BoundListener[]): Promise<void> {
  return Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve())))).then(() => undefined);
}

/**
 * Binds one mapping. With no address it binds 127.0.0.1 and ::1 on the same port, so `localhost`
 * works whichever way it resolves. A named port must bind on both (unless this machine lacks one
 * of the addresses); a picked port (0) may end up on one, with a warning.
 */
export async function bindMapping(mapping: PortMapping, onConnection: (socket: Socket) => void, onError?: (err: Error) => void): Promise<BindResult> {
  if (mapping.address !== undefined) {
    try {
      return { listeners: [await listenOn(mapping.address, mapping.localPort, onConnection, onError)], skipped: [] };
    } catch (err) {
      throw listenError(mapping.address, mapping.localPort, mapping, err as NodeJS.ErrnoException);
    }
  }
  // A chosen port (0) may be free on 127.0.0.1 but taken on ::1: try a few times for one that is free on both.
  for (let tries = 0; ; tries += 1) {
    const listeners: BoundListener[] = [];
    const skipped: BindResult['skipped'] = [];
    let port = mapping.localPort;
    for (const address of LOOPBACK) {
      try {
        const listener = await listenOn(address, port, onConnection, onError);
        listeners.push(listener);
        port = listener.port;
      } catch (err) {
        skipped.push({ address, error: err as NodeJS.ErrnoException });
      }
    }
    const retry = mapping.localPort === 0 && listeners.length === 1 && tries < 5 && skipped.some((s) => s.error.code === 'EADDRINUSE');
    if (retry) {
      await closeListeners(listeners);
      continue;
    }
    // A port the user named, taken on one loopback by another program (a local PostgreSQL on
    // 127.0.0.1:5432): `localhost` would reach that program for every client resolving to that
    // family. Refuse as when both are taken; --address names the one family to use.
    const taken = skipped.find((s) => !NO_ADDRESS.has(s.error.code ?? ''));
    if (mapping.localPort !== 0 && listeners.length > 0 && taken !== undefined) {
      await closeListeners(listeners);
      throw listenError(taken.address, mapping.localPort, mapping, taken.error, listeners[0]?.address);
    }
    if (listeners.length === 0) {
      const first = taken ?? skipped[0];
      if (first === undefined) throw new TunnelError(ErrorCodes.LISTEN, 'No loopback address could be bound');
      throw listenError(first.address, mapping.localPort, mapping, first.error);
    }
    return { listeners, skipped: skipped.filter((s) => !NO_ADDRESS.has(s.error.code ?? '')) };
  }
}
