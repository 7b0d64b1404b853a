import { EventEmitter } from 'node:events';
import { ErrorCodes, TunnelError, usageError } from '../errors.js';
import { parseBindAddress, parsePortSpec, parsePortSpecs, type PortMapping } from '../config/port-spec.js';
import { formatHostPort } from '../config/host-port.js';
import { isLoopbackHost } from '../config/proxy-url.js';
import { FrontEnd } from './front-end.js';
import { bindMapping, closeListeners, type BoundListener } from './listen.js';
import type { TunnelOptions } from './options.js';
import type { Upgrader } from './upgrader.js';
import { checkUpgraderOptions, prepareUpgrader } from './prepare.js';
import type { RetryInfo } from './connect.js';
import { closeUnused, type Route, type TunnelEvents, type TunnelStats, type TunnelWarning } from './connections.js';

export type { ConnectionInfo, ConnectionClose, TunnelWarning, TunnelStats, TunnelEvents } from './connections.js';

export interface BoundAddress {
  /** Bound IP address (127.0.0.1, ::1, 0.0.0.0 ...). */
  address: string;
  family: 'IPv4' | 'IPv6';
  /** The real local port (the chosen one for :REMOTE). */
  port: number;
  remotePort: number;
  /** Index of the mapping (port spec) this address serves. */
  mapping: number;
}

export interface TunnelHandle extends EventEmitter<TunnelEvents> {
  readonly sandbox: string;
  /** The proxy host the tunnels go to (no secret). */
  readonly proxyHost: string;
  /** Every bound local address, in mapping order. */
  readonly addresses: readonly BoundAddress[];
  /** Warnings raised before the handle was returned (startup check, bind). */
  readonly warnings: readonly TunnelWarning[];
  readonly stats: TunnelStats;
  /** Bytes each way so far, the tunnels still open included (`stats` counts a tunnel when it closes). */
  traffic(): { bytesSent: number; bytesReceived: number };
  /** Stops listening and closes every tunnel with a 1001 close; safe to call more than once. */
  close(): Promise<void>;
}

function toMappings(options: TunnelOptions): PortMapping[] {
  const defaultAddress = options.address === undefined ? undefined : parseBindAddress(options.address, 'option address');
  const list: unknown[] = Array.isArray(options.ports) ? options.ports : [options.ports];
  const specs = list.map((p) => {
    if (typeof p === 'string') return p;
    if (p === null || typeof p !== 'object') {
      throw usageError(`Invalid option ports: expected port-spec strings such as "5432" or ":5432", or { localPort, remotePort } objects, got ${String(p)}`);
    }
    return formatSpecObject(p as PortMapping);
  });
  return parsePortSpecs(specs, defaultAddress);
}

function formatSpecObject(mapping: PortMapping): string {
  // Objects go through the same parser as strings, so both are validated alike.
  const parsed = parsePortSpec(`${mapping.localPort}:${mapping.remotePort}`);
  if (mapping.address === undefined) return `${parsed.localPort}:${parsed.remotePort}`;
  const address = parseBindAddress(mapping.address, 'ports[].address') ?? '127.0.0.1';
  return address.includes(':') ? `[${address}]:${parsed.localPort}:${parsed.remotePort}` : `${address}:${parsed.localPort}:${parsed.remotePort}`;
}

class Tunnel extends FrontEnd implements TunnelHandle {
  readonly addresses: BoundAddress[] = [];
  private readonly bound: BoundListener[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly upgrader: Upgrader,
    private readonly mappings: PortMapping[],
    private readonly onStartupRetry?: TunnelOptions['onStartupRetry'],
  ) {
    super(upgrader.settings);
  }

  get sandbox(): string {
    return this.upgrader.sandbox;
  }

  get proxyHost(): string {
    return this.upgrader.target.hostname;
  }

  /** One upgrade per distinct remote port, closed at once: fails fast on a bad key or sandbox. */
  async check(): Promise<void> {
    const ports = [...new Set(this.mappings.map((m) => m.remotePort))];
    await Promise.all(
      ports.map(async (port) => {
        try {
          const onRetry = this.onStartupRetry && ((retry: RetryInfo) => this.onStartupRetry?.({ ...retry, remotePort: port }));
          const ws = await this.upgrader.connect(port, { onRetry, startup: true });
          closeUnused(ws, 1000, 'startup check');
        } catch (err) {
          if (!(err instanceof TunnelError) || err.code !== ErrorCodes.PORT_CLOSED || this.upgrader.settings.waitMs > 0) throw err;
          this.connections.warn('TL_WARN_PORT_CLOSED', `Nothing is listening on port ${port} inside sandbox ${this.sandbox} yet; connections will fail until it is`);
        }
      }),
    );
  }

  async listen(): Promise<void> {
    try {
      for (const [index, mapping] of this.mappings.entries()) {
        const route = this.routeFor(mapping);
        const result = await bindMapping(mapping, (socket) => this.connections.accept(socket, route), (err) => this.connections.acceptFailed(err));
        this.bound.push(...result.listeners);
        for (const l of result.listeners) {
          this.addresses.push({ address: l.address, family: l.family, port: l.port, remotePort: mapping.remotePort, mapping: index });
          if (!isLoopbackHost(l.address)) {
            this.connections.warn('TL_WARN_EXPOSED', `Listening on ${formatHostPort(l.address, l.port)}, beyond this machine: anyone who can reach it uses your credentials`);
          }
        }
        for (const s of result.skipped) {
          this.connections.warn('TL_WARN_BIND', `Could not also listen on ${formatHostPort(s.address, result.listeners[0]?.port ?? mapping.localPort)} (${s.error.code ?? s.error.message}); forwarding on ${result.listeners.map((l) => formatHostPort(l.address, l.port)).join(', ')} only`);
        }
      }
    } catch (err) {
      this.upgrader.close();
      await closeListeners(this.bound);
      throw err;
    }
    this.connections.start();
  }

  private routeFor(mapping: PortMapping): Route {
    return {
      sandbox: this.upgrader.sandbox,
      remotePort: mapping.remotePort,
      connect: (opts) => this.upgrader.connect(mapping.remotePort, opts),
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = closeListeners(this.bound);
      this.upgrader.close();
      await Promise.all([stopped, this.connections.close()]);
    })();
    return this.closing;
  }
}

/**
 * Opens local listeners that forward each accepted connection through its own tunnel WebSocket.
 * Resolves once every mapping listens; rejects with a TunnelError (and listens on nothing) otherwise.
 */
export async function openTunnel(options: TunnelOptions): Promise<TunnelHandle> {
  if (options === null || typeof options !== 'object') throw usageError('openTunnel expects an options object: { sandbox, ports, credentials, ... }');
  checkUpgraderOptions(options);
  const mappings = toMappings(options);
  const upgrader = await prepareUpgrader(options);
  const tunnel = new Tunnel(upgrader, mappings, options.onStartupRetry);
  // Warm connections start opening now, so the check's upgrade goes out on one that is on its way.
  upgrader.prewarm();
  try {
    if (options.check !== false) await tunnel.check();
  } catch (err) {
    upgrader.close();
    throw err;
  }
  await tunnel.listen();
  return tunnel;
}
