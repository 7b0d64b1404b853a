import { openControlEndpoint, type ControlEndpointHandle, type ForwardInfo, type ProxyHandle, type TunnelHandle, type TunnelStats, type TunnelStatus } from '../../index.js';
import type { Output } from '../output.js';

/** Set by `--detach` in the background process it starts: its id, already printed by the starter. */
export const DETACH_ID_ENV = 'TL_TUNNEL_DETACH_ID';
/** The detached process's log file, for `ps` and `logs`. */
export const DETACH_LOG_ENV = 'TL_TUNNEL_DETACH_LOG';

export interface Registration {
  /** Resolves when `tl-tunnel stop` asks this tunnel to stop. */
  readonly stopRequested: Promise<'stop'>;
  close(): Promise<void>;
}

/**
 * Makes a running forwarder visible to `tl-tunnel ps` and stoppable by `tl-tunnel stop`, detached
 * or not. A control directory that cannot be used costs a warning in the foreground (the tunnels
 * still work, `ps` just cannot see them); a detached tunnel that could not be stopped later must
 * not start, so there it is fatal.
 */
export async function registerForward(handle: TunnelHandle | undefined, proxy: ProxyHandle | undefined, stats: () => TunnelStats, sandbox: string | undefined, out: Output): Promise<Registration> {
  let requested: (reason: 'stop') => void = () => {};
  const stopRequested = new Promise<'stop'>((resolve) => (requested = resolve));
  let lastError: TunnelStatus['lastError'];
  for (const h of [handle, proxy]) {
    h?.on('close', (e) => {
      if (e.error) lastError = { code: e.error.code, message: e.error.message, time: new Date().toISOString() };
    });
  }
  const forwards: ForwardInfo[] = [
    ...(handle?.addresses ?? []).map((a) => ({ kind: 'port' as const, address: a.address, port: a.port, remotePort: a.remotePort })),
    ...(proxy?.addresses ?? []).map((a) => ({ kind: 'proxy' as const, address: a.address, port: a.port })),
  ];
  const detachId = process.env[DETACH_ID_ENV];
  let endpoint: ControlEndpointHandle | undefined;
  try {
    endpoint = await openControlEndpoint({
      ...(detachId ? { id: detachId, detached: true, log: process.env[DETACH_LOG_ENV] } : {}),
      ...(sandbox === undefined ? {} : { sandbox }),
      status: () => {
        const s = stats();
        return { forwards, connections: s.connections, active: s.active, bytesSent: s.bytesSent, bytesReceived: s.bytesReceived, ...(lastError ? { lastError } : {}) };
      },
      onStop: () => requested('stop'),
    });
  } catch (err) {
    if (detachId) throw err;
    out.warning({ code: 'TL_WARN_CONTROL', message: `${(err as Error).message}; this tunnel will not show in tl-tunnel ps` });
  }
  if (endpoint) out.verbose(`Tunnel id ${endpoint.id} (tl-tunnel ps, tl-tunnel stop ${endpoint.id})`);
  return { stopRequested, close: () => endpoint?.close() ?? Promise.resolve() };
}
