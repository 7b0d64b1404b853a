import type { Duplex } from 'node:stream';
import { parsePortSpec } from '../config/port-spec.js';
import { Relay, type RelayResult } from '../relay/relay.js';
import type { RetryInfo } from './connect.js';
import type { TunnelOptions } from './options.js';
import { checkUpgraderOptions, prepareUpgrader } from './prepare.js';

export interface StreamTunnelOptions extends Omit<TunnelOptions, 'ports' | 'address' | 'check' | 'maxConnections'> {
  /** Port inside the sandbox. */
  remotePort: number;
  /** The stream to relay, e.g. stdin and stdout joined with Duplex.from(). */
  stream: Duplex;
  /** Called when the tunnel is open and bytes start to flow. */
  onOpen?: () => void;
  onRetry?: (info: RetryInfo) => void;
}

export interface StreamTunnelResult extends RelayResult {
  /** Bytes from the stream to the sandbox. */
  bytesSent: number;
  /** Bytes from the sandbox to the stream. */
  bytesReceived: number;
}

/**
 * Relays one stream over one tunnel (stdio mode, an SSH ProxyCommand). Resolves when either side
 * closes; rejects with a TunnelError when the tunnel cannot be opened.
 */
export async function forwardStream(options: StreamTunnelOptions): Promise<StreamTunnelResult> {
  checkUpgraderOptions(options);
  const { remotePort } = parsePortSpec(`0:${String(options.remotePort)}`);
  // One connection only: a warm socket would be opened to replace it and never used.
  const upgrader = await prepareUpgrader({ ...options, prewarm: false });
  // Its one tunnel is its start-up: a refused connection is a wrong URL, as for the startup check.
  const ws = await upgrader.connect(remotePort, { onRetry: options.onRetry, startup: true });
  return new Promise((resolve) => {
    const relay = new Relay(ws, options.stream, {
      lingerMs: upgrader.settings.lingerMs,
      streamFrames: { maxPayload: upgrader.settings.maxPayload },
      onEnd: (result) => {
        clearInterval(sweeper);
        resolve({ ...result, bytesSent: result.bytesUp, bytesReceived: result.bytesDown });
      },
    });
    const { keepaliveMs } = upgrader.settings;
    const sweeper = keepaliveMs > 0 ? setInterval(() => relay.keepaliveTick(), keepaliveMs).unref() : undefined;
    options.onOpen?.();
  });
}

