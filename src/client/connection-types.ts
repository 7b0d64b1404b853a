// The shapes a tunnel handle reports and the contract between front ends and the connection set.
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import type { TunnelError } from '../errors.js';
import type { RetryInfo } from './connect.js';
import type { StreamFilter } from '../relay/relay-types.js';

export interface ConnectionInfo {
  /** Increasing id, unique within one tunnel handle. */
  id: number;
  /** The local client, "127.0.0.1:53122". */
  peer: string;
  /** The local listener it came in on, "127.0.0.1:5432". */
  local: string;
  /** The sandbox the connection goes to (as given; proxy mode names it per connection). */
  sandbox: string;
  remotePort: number;
  /** Set once open: whether the upgrade went out on a warm (pre-opened) connection to the proxy. */
  warm?: boolean;
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
  /** Connections refused at once because too many were already waiting (TL_WARN_OVERLOADED). */
  refused: number;
  /** Of `active`, tunnels whose local client has left, still delivering the sandbox's last bytes (--linger). */
  lingering: number;
}

export interface TunnelEvents {
  open: [ConnectionInfo];
  close: [ConnectionClose];
  warning: [TunnelWarning];
  retry: [ConnectionInfo & RetryInfo];
}

/**
 * Where one accepted connection goes, and what its front end does around the upgrade. A port
 * mapping just connects; a proxy front end (SOCKS, HTTP CONNECT) answers its own protocol.
 */
export interface Route {
  sandbox: string;
  remotePort: number;
  /** The listener's address for events, "127.0.0.1:5432". */
  local?: string;
  /** Opens the tunnel WebSocket (retries included). */
  connect(opts: { signal: AbortSignal; onRetry: (info: RetryInfo) => void }): Promise<WebSocket>;
  /** Called when the tunnel is open, before the relay starts (e.g. write a SOCKS success reply). */
  onOpen?(socket: Socket): void;
  /**
   * Called when the tunnel could not be opened, before the socket is destroyed (e.g. write an error
   * reply). Returns true when it closes the socket itself (so the reply is not lost to a reset).
   */
  onFail?(socket: Socket, error: TunnelError): boolean | void;
  /** Frames what crosses the tunnel (the -D HTTP proxy: one request and its answer). */
  filter?: StreamFilter;
}

export interface ConnectionSettings {
  maxConnections: number;
  keepaliveMs: number;
  lingerMs: number;
  /** Largest frame accepted from the proxy. */
  maxPayload: number;
}
