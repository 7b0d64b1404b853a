import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { ErrorCodes, TunnelError } from '../errors.js';
import { formatHostPort } from '../config/host-port.js';
import { Relay, type RelayResult } from '../relay/relay.js';
import type { ConnectionInfo, ConnectionSettings, Route, TunnelEvents, TunnelStats, TunnelWarning } from './connection-types.js';
import { usedWarmSocket } from './warm/connector.js';
import { FdWatch, isFdExhausted } from './fd-watch.js';
import { watchWhileWaiting } from './leave-watch.js';
import { watchPingFlood } from './ping-flood.js';

export type { ConnectionInfo, ConnectionClose, TunnelWarning, TunnelStats, TunnelEvents, Route, ConnectionSettings } from './connection-types.js';

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

interface Waiting {
  socket: Socket;
  route: Route;
  peer: string;
  /** Stops watching for the client leaving (before the socket is handed on). */
  unwatch: () => void;
}

/** Closes a tunnel WebSocket that will carry no data, without letting an unanswered close hold it. */
export function closeUnused(ws: WebSocket, code: number, reason: string): void {
  ws.on('error', () => {});
  ws.resume();
  ws.close(code, reason);
  // A proxy that never answers the close must not hold the socket for ws's 30 s close timeout.
  setTimeout(() => ws.terminate(), 2000).unref();
}

function tunnelsOpen(n: number): string {
  return n === 1 ? '1 tunnel is open' : `${n} tunnels are open`;
}

/** The listener a socket came in on; a socket reset before it was accepted knows only its server. */
function localOf(socket: Socket): string {
  if (socket.localAddress !== undefined) return formatHostPort(socket.localAddress, socket.localPort ?? 0);
  const bound = (socket as Socket & { server?: { address(): unknown } }).server?.address();
  const a = bound as { address?: string; port?: number } | null | undefined;
  return a?.address === undefined ? 'unknown' : formatHostPort(a.address, a.port ?? 0);
}

/**
 * The accepted local connections of one handle, whatever front end accepted them: the
 * --max-connections limit and its waiting line, one tunnel WebSocket and relay per connection,
 * keepalive, statistics and events. Closing it closes every tunnel.
 */
export class ConnectionSet {
  readonly stats: TunnelStats = (() => {
    const connections = (): Set<Connection> => this.connections;
    return {
      connections: 0,
      active: 0,
      waiting: 0,
      bytesSent: 0,
      bytesReceived: 0,
      errors: {},
      refused: 0,
      // Counted when asked: a tunnel starts lingering when its client leaves, with no event of its own.
      get lingering(): number {
        let n = 0;
        for (const c of connections()) if (c.relay?.lingering === true) n += 1;
        return n;
      },
    };
  })();
  /** Warnings raised before `started` (kept for the handle's `warnings`). */
  readonly earlyWarnings: TunnelWarning[] = [];
  private readonly connections = new Set<Connection>();
  private readonly waiting: Waiting[] = [];
  private readonly fds = new FdWatch((message) => this.warn('TL_WARN_FD_LIMIT', message));
  private nextId = 1;
  private sweeper: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private started = false;

  /** `events`: the handle that reports open/close/warning/retry to its user. */
  constructor(
    private readonly settings: ConnectionSettings,
    private readonly events: EventEmitter<TunnelEvents>,
  ) {}

  /** From now on warnings are events; keepalive starts. */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.settings.keepaliveMs > 0) {
      this.sweeper = setInterval(() => {
        for (const c of this.connections) c.relay?.keepaliveTick();
      }, this.settings.keepaliveMs).unref();
    }
  }

  warn(code: string, message: string): void {
    const warning = { code, message };
    if (this.started) this.events.emit('warning', warning);
    else this.earlyWarnings.push(warning);
  }

  /** Takes one accepted local socket (paused) to `route`, now or once a place is free. */
  accept(socket: Socket, route: Route): void {
    // Asked now: once the client has reset, the socket no longer knows its peer.
    const peer = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    this.fds.poke();
    if (this.closing) {
      socket.destroy();
      return;
    }
    // A TCP client that reset before it was accepted: the system no longer knows its address. There
    // is nobody to open a tunnel for; it still ends with its one close event, as a client that left.
    if (socket.remoteAddress === undefined) {
      socket.on('error', () => {});
      socket.destroy();
      this.closeUntunnelled(socket, route, 'unknown', 'local client left');
      return;
    }
    const max = this.settings.maxConnections;
    if (this.connections.size >= max) {
      if (this.waiting.length >= max * MAX_WAITING_FACTOR) {
        this.stats.refused += 1;
        this.warn('TL_WARN_OVERLOADED', `Refused a connection from ${peer}: ${tunnelsOpen(max)} and ${this.waiting.length} connections already wait`);
        socket.on('error', () => {});
        socket.destroy();
        return;
      }
      if (this.waiting.length === 0) {
        this.warn('TL_WARN_MAX_CONNECTIONS', `${tunnelsOpen(max)} (--max-connections); new connections wait until one closes`);
      }
      const entry: Waiting = { socket, route, peer, unwatch: () => {} };
      // A client that gives up while it waits must give its place back.
      entry.unwatch = watchWhileWaiting(socket, () => this.leaveWaiting(entry));
      this.waiting.push(entry);
      this.stats.waiting = this.waiting.length;
      this.fds.busy(true);
      return;
    }
    this.open(socket, route, peer);
  }

  /** Called by the handle's listeners when accepting failed (e.g. EMFILE without libuv's reserve). */
  acceptFailed(err: Error): void {
    if (isFdExhausted(err)) this.fds.exhausted((err as NodeJS.ErrnoException).code ?? 'EMFILE');
    else this.warn('TL_WARN_ACCEPT', `Accepting a local connection failed (${(err as NodeJS.ErrnoException).code ?? err.message})`);
  }

  /**
   * The one close event of a connection that never had a tunnel (it left first, or was still
   * waiting at shutdown). Not counted in `stats.connections`: nothing was served or failed.
   */
  private closeUntunnelled(socket: Socket, route: Route, peer: string, reason: string): void {
    this.events.emit('close', {
      id: this.nextId++,
      peer,
      local: route.local ?? localOf(socket),
      sandbox: route.sandbox,
      remotePort: route.remotePort,
      bytesSent: 0,
      bytesReceived: 0,
      durationMs: 0,
      reason,
      opened: false,
    });
  }

  private leaveWaiting(entry: Waiting): void {
    const i = this.waiting.indexOf(entry);
    if (i < 0) return;
    this.waiting.splice(i, 1);
    this.stats.waiting = this.waiting.length;
    entry.unwatch();
    entry.socket.destroy();
    this.closeUntunnelled(entry.socket, entry.route, entry.peer, 'local client left while waiting');
    if (this.connections.size === 0 && this.waiting.length === 0) this.fds.busy(false);
  }

  private open(socket: Socket, route: Route, peer: string): void {
    this.fds.busy(true);
    const info: ConnectionInfo = {
      id: this.nextId++,
      peer,
      local: route.local ?? localOf(socket),
      sandbox: route.sandbox,
      remotePort: route.remotePort,
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
    const settle = (): void => {
      socket.off('error', onEarlyClose);
      socket.off('close', onEarlyClose);
    };
    route.connect({ signal: conn.abort.signal, onRetry: (retry) => this.events.emit('retry', { ...info, ...retry }) }).then(
      (ws) => {
        settle();
        if (socket.destroyed || this.closing) {
          closeUnused(ws, 1001, 'local client left');
          this.finish(conn, { bytesUp: 0, bytesDown: 0, durationMs: Date.now() - conn.startedAt, reason: 'local client left' }, false);
          return;
        }
        info.warm = usedWarmSocket(ws);
        route.onOpen?.(socket);
        const floodChecked = watchPingFlood(ws);
        conn.relay = new Relay(ws, socket, {
          lingerMs: this.settings.lingerMs,
          streamFrames: { maxPayload: this.settings.maxPayload },
          ...(route.filter ? { filter: route.filter } : {}),
          onEnd: (result) => this.finish(conn, floodChecked(result), true),
        });
        this.events.emit('open', info);
      },
      (err: unknown) => {
        settle();
        socket.on('error', () => {});
        const error = err instanceof TunnelError ? err : new TunnelError(ErrorCodes.INTERNAL, String(err), { cause: err });
        const closedByRoute = !socket.destroyed && route.onFail?.(socket, error) === true;
        if (!closedByRoute) socket.destroy();
        this.finish(conn, { bytesUp: 0, bytesDown: 0, durationMs: Date.now() - conn.startedAt, reason: error.message, error }, false);
      },
    );
  }

  private finish(conn: Connection, result: Pick<RelayResult, 'bytesUp' | 'bytesDown' | 'durationMs' | 'reason' | 'error'>, opened: boolean): void {
    if (!this.connections.delete(conn)) return;
    this.stats.active = this.connections.size;
    this.stats.bytesSent += result.bytesUp;
    this.stats.bytesReceived += result.bytesDown;
    // A local client that resets its own connection (mid-upgrade, a port scan, a health check, or
    // after its exchange) chose to end it: the sandbox side is reset to match, and nothing failed.
    const left = result.error?.code === ErrorCodes.LOCAL_RESET;
    const error = left ? undefined : result.error;
    if (error?.code === ErrorCodes.FD_LIMIT) this.fds.exhausted('EMFILE');
    if (error) this.stats.errors[error.code] = (this.stats.errors[error.code] ?? 0) + 1;
    this.events.emit('close', {
      ...conn.info,
      bytesSent: result.bytesUp,
      bytesReceived: result.bytesDown,
      durationMs: result.durationMs,
      reason: left && opened ? (result.bytesUp === 0 && result.bytesDown === 0 ? 'local client left' : 'reset by local client') : result.reason,
      opened,
      ...(error ? { error } : {}),
    });
    conn.markDone();
    this.admitWaiting();
    if (this.connections.size === 0 && this.waiting.length === 0) this.fds.busy(false);
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0 && this.connections.size < this.settings.maxConnections && !this.closing) {
      const next = this.waiting.shift() as Waiting;
      this.stats.waiting = this.waiting.length;
      next.unwatch();
      if (!next.socket.destroyed) this.open(next.socket, next.route, next.peer);
      else this.closeUntunnelled(next.socket, next.route, next.peer, 'local client left while waiting');
    }
  }

  /** Bytes each way so far, the tunnels still open included (stats count a tunnel when it closes). */
  traffic(): { bytesSent: number; bytesReceived: number } {
    let { bytesSent, bytesReceived } = this.stats;
    for (const c of this.connections) {
      bytesSent += c.relay?.bytesUp ?? 0;
      bytesReceived += c.relay?.bytesDown ?? 0;
    }
    return { bytesSent, bytesReceived };
  }

  /** Closes every tunnel (1001) and drops waiting clients; resolves when all have closed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper);
      this.fds.stop();
      for (const w of this.waiting.splice(0)) {
        w.unwatch();
        w.socket.destroy();
        this.closeUntunnelled(w.socket, w.route, w.peer, 'tunnel stopped while waiting');
      }
      this.stats.waiting = 0;
      const ended = [...this.connections].map((c) => c.done);
      for (const c of this.connections) {
        if (c.relay) c.relay.close(1001, 'stop');
        else c.abort.abort(new TunnelError(ErrorCodes.LOCAL_RESET, 'The tunnel was stopped'));
      }
      await Promise.all(ended);
    })();
    return this.closing;
  }
}
