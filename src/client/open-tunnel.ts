import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { ErrorCodes, TunnelError, usageError } from '../errors.js';
import { parseBindAddress, parsePortSpec, parsePortSpecs, type PortMapping } from '../config/port-spec.js';
import { isLoopbackHost } from '../config/proxy-url.js';
import { Relay } from '../relay/relay.js';
import { bindMapping, closeListeners, type BoundListener } from './listen.js';
import type { TunnelOptions } from './options.js';
import type { Upgrader } from './upgrader.js';
import { checkUpgraderOptions, prepareUpgrader } from './prepare.js';
import type { RetryInfo } from './connect.js';

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

export interface ConnectionInfo {
  /** Increasing id, unique within one tunnel handle. */
  id: number;
  /** The local client, "127.0.0.1:53122". */
  peer: string;
  /** The local listener it came in on, "127.0.0.1:5432". */
  local: string;
  remotePort: number;
}

export interface ConnectionClose extends ConnectionInfo {
  /** Bytes from the local client to the sandbox. */
  bytesSent: number;
  /** Bytes from the sandbox to the local client. */
  bytesReceived: number;
  durationMs: number;
  reason: string;
  /** Whether the tunnel WebSocket was ever open (false: the upgrade failed). */
  opened: boolean;
  error?: TunnelError;
}

export interface TunnelWarning {
  code: string;
  message: string;
}

export interface TunnelStats {
  connections: number;
  active: number;
  waiting: number;
  bytesSent: number;
  bytesReceived: number;
  /** Failed connections by error code. */
  errors: Record<string, number>;
}

export interface TunnelEvents {
  open: [ConnectionInfo];
  close: [ConnectionClose];
  warning: [TunnelWarning];
  retry: [ConnectionInfo & RetryInfo];
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
  /** Stops listening and closes every tunnel with a 1001 close; safe to call more than once. */
  close(): Promise<void>;
}

interface Connection {
  info: ConnectionInfo;
  socket: Socket;
  abort: AbortController;
  relay?: Relay;
  startedAt: number;
  /** Resolves when the connection's close event has been emitted. */
  done: Promise<void>;
  markDone: () => void;
}

const MAX_WAITING_FACTOR = 4;

/** Closes a tunnel WebSocket that will carry no data, without letting an unanswered close hold it. */
function closeUnused(ws: WebSocket, code: number, reason: string): void {
  ws.on('error', () => {});
  ws.resume();
  ws.close(code, reason);
  // A proxy that never answers the close must not hold the socket for ws's 30 s close timeout.
  setTimeout(() => ws.terminate(), 2000).unref();
}

function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
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

class Tunnel extends EventEmitter<TunnelEvents> implements TunnelHandle {
  readonly addresses: BoundAddress[] = [];
  readonly warnings: TunnelWarning[] = [];
  readonly stats: TunnelStats = { connections: 0, active: 0, waiting: 0, bytesSent: 0, bytesReceived: 0, errors: {} };
  private readonly bound: BoundListener[] = [];
  private readonly connections = new Set<Connection>();
  private readonly waiting: { socket: Socket; mapping: PortMapping }[] = [];
  private nextId = 1;
  private sweeper: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private started = false;

  constructor(
    private readonly upgrader: Upgrader,
    private readonly mappings: PortMapping[],
    private readonly onStartupRetry?: TunnelOptions['onStartupRetry'],
  ) {
    super();
  }

  get sandbox(): string {
    return this.upgrader.sandbox;
  }

  get proxyHost(): string {
    return this.upgrader.target.hostname;
  }

  private warn(code: string, message: string): void {
    const warning = { code, message };
    if (this.started) this.emit('warning', warning);
    else this.warnings.push(warning);
  }

  /** One upgrade per distinct remote port, closed at once: fails fast on a bad key or sandbox. */
  async check(): Promise<void> {
    const ports = [...new Set(this.mappings.map((m) => m.remotePort))];
    await Promise.all(
      ports.map(async (port) => {
        try {
          const onRetry = this.onStartupRetry && ((retry: RetryInfo) => this.onStartupRetry?.({ ...retry, remotePort: port }));
          const ws = await this.upgrader.connect(port, { onRetry });
          closeUnused(ws, 1000, 'startup check');
        } catch (err) {
          if (!(err instanceof TunnelError) || err.code !== ErrorCodes.PORT_CLOSED || this.upgrader.settings.waitMs > 0) throw err;
          this.warn('TL_WARN_PORT_CLOSED', `Nothing is listening on port ${port} inside sandbox ${this.sandbox} yet; connections will fail until it is`);
        }
      }),
    );
  }

  async listen(): Promise<void> {
    try {
      for (const [index, mapping] of this.mappings.entries()) {
        const result = await bindMapping(mapping, (socket) => this.accept(socket, mapping));
        this.bound.push(...result.listeners);
        for (const l of result.listeners) {
          this.addresses.push({ address: l.address, family: l.family, port: l.port, remotePort: mapping.remotePort, mapping: index });
          if (!isLoopbackHost(l.address)) {
            this.warn('TL_WARN_EXPOSED', `Listening on ${formatHostPort(l.address, l.port)}, beyond this machine: anyone who can reach it uses your credentials`);
          }
        }
        for (const s of result.skipped) {
          this.warn('TL_WARN_BIND', `Could not also listen on ${formatHostPort(s.address, result.listeners[0]?.port ?? mapping.localPort)} (${s.error.code ?? s.error.message}); forwarding on ${result.listeners.map((l) => formatHostPort(l.address, l.port)).join(', ')} only`);
        }
      }
    } catch (err) {
      await closeListeners(this.bound);
      throw err;
    }
    const { keepaliveMs } = this.upgrader.settings;
    if (keepaliveMs > 0) {
      this.sweeper = setInterval(() => {
        for (const c of this.connections) c.relay?.keepaliveTick();
      }, keepaliveMs).unref();
    }
    this.started = true;
  }

  private accept(socket: Socket, mapping: PortMapping): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.upgrader.settings.maxConnections) {
      const max = this.upgrader.settings.maxConnections;
      if (this.waiting.length >= max * MAX_WAITING_FACTOR) {
        this.warn('TL_WARN_OVERLOADED', `Refused a connection from ${formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0)}: ${max} tunnels are open and ${this.waiting.length} connections already wait`);
        socket.destroy();
        return;
      }
      if (this.waiting.length === 0) {
        this.warn('TL_WARN_MAX_CONNECTIONS', `${max} tunnels are open (--max-connections); new connections wait until one closes`);
      }
      socket.on('error', () => {});
      this.waiting.push({ socket, mapping });
      this.stats.waiting = this.waiting.length;
      return;
    }
    this.start(socket, mapping);
  }

  private start(socket: Socket, mapping: PortMapping): void {
    const local = formatHostPort(socket.localAddress ?? '', socket.localPort ?? 0);
    const info: ConnectionInfo = {
      id: this.nextId++,
      peer: formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0),
      local,
      remotePort: mapping.remotePort,
    };
    let markDone = (): void => {};
    const done = new Promise<void>((resolve) => {
      markDone = resolve;
    });
    const conn: Connection = { info, socket, abort: new AbortController(), startedAt: Date.now(), done, markDone };
    this.connections.add(conn);
    this.stats.connections += 1;
    this.stats.active = this.connections.size;
    // While the upgrade runs the socket stays paused; if the client leaves, stop trying.
    const onEarlyClose = (): void => conn.abort.abort(new TunnelError(ErrorCodes.LOCAL_RESET, 'The local client left before the tunnel opened'));
    socket.on('error', onEarlyClose);
    socket.on('close', onEarlyClose);
    this.upgrader
      .connect(mapping.remotePort, {
        signal: conn.abort.signal,
        onRetry: (retry) => this.emit('retry', { ...info, ...retry }),
      })
      .then(
        (ws) => {
          socket.off('error', onEarlyClose);
          socket.off('close', onEarlyClose);
          if (socket.destroyed || this.closing) {
            closeUnused(ws, 1001, 'local client left');
            this.finish(conn, { bytesUp: 0, bytesDown: 0, durationMs: Date.now() - conn.startedAt, reason: 'local client left' }, false);
            return;
          }
          conn.relay = new Relay(ws, socket, {
            lingerMs: this.upgrader.settings.lingerMs,
            onEnd: (result) => this.finish(conn, result, true),
          });
          this.emit('open', info);
        },
        (err: unknown) => {
          socket.off('error', onEarlyClose);
          socket.off('close', onEarlyClose);
          socket.on('error', () => {});
          socket.destroy();
          const error = err instanceof TunnelError ? err : new TunnelError(ErrorCodes.INTERNAL, String(err), { cause: err });
          this.finish(conn, { bytesUp: 0, bytesDown: 0, durationMs: Date.now() - conn.startedAt, reason: error.message, error }, false);
        },
      );
  }

  private finish(conn: Connection, result: { bytesUp: number; bytesDown: number; durationMs: number; reason: string; error?: TunnelError }, opened: boolean): void {
    if (!this.connections.delete(conn)) return;
    this.stats.active = this.connections.size;
    this.stats.bytesSent += result.bytesUp;
    this.stats.bytesReceived += result.bytesDown;
    // A client leaving mid-upgrade, or our own shutdown, is not a failure worth counting.
    const error = result.error?.code === ErrorCodes.LOCAL_RESET && !opened ? undefined : result.error;
    if (error) this.stats.errors[error.code] = (this.stats.errors[error.code] ?? 0) + 1;
    this.emit('close', {
      ...conn.info,
      bytesSent: result.bytesUp,
      bytesReceived: result.bytesDown,
      durationMs: result.durationMs,
      reason: result.reason,
      opened,
      ...(error ? { error } : {}),
    });
    conn.markDone();
    this.admitWaiting();
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0 && this.connections.size < this.upgrader.settings.maxConnections && !this.closing) {
      const next = this.waiting.shift() as { socket: Socket; mapping: PortMapping };
      this.stats.waiting = this.waiting.length;
      if (!next.socket.destroyed) this.start(next.socket, next.mapping);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper);
      const stopped = closeListeners(this.bound);
      for (const w of this.waiting.splice(0)) w.socket.destroy();
      this.stats.waiting = 0;
      const ended = [...this.connections].map((c) => c.done);
      for (const c of this.connections) {
        if (c.relay) c.relay.close(1001, 'tunnel stopped');
        else c.abort.abort(new TunnelError(ErrorCodes.LOCAL_RESET, 'The tunnel was stopped'));
      }
      await Promise.all([stopped, ...ended]);
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
  if (options.check !== false) await tunnel.check();
  await tunnel.listen();
  return tunnel;
}
