import { EventEmitter } from 'node:events';
import { ConnectionSet, type ConnectionSettings, type TunnelEvents, type TunnelStats, type TunnelWarning } from './connections.js';

/**
 * What every front end (forwarded ports, the SOCKS/HTTP proxy) shares: the connections it hands
 * to tunnels, and the statistics, warnings and events its handle reports from them.
 */
export abstract class FrontEnd extends EventEmitter<TunnelEvents> {
  protected readonly connections: ConnectionSet;

  constructor(settings: ConnectionSettings) {
    super();
    this.connections = new ConnectionSet(settings, this);
  }

  get stats(): TunnelStats {
    return this.connections.stats;
  }

  /** Warnings raised before the handle was returned (startup check, bind). */
  get warnings(): readonly TunnelWarning[] {
    return this.connections.earlyWarnings;
  }

  /** Bytes each way so far, the tunnels still open included (`stats` counts a tunnel when it closes). */
  traffic(): { bytesSent: number; bytesReceived: number } {
    return this.connections.traffic();
  }
}
