import { lookupBaseFor, openProxy, type ProxyHandle, type SandboxStatusEvent, type TunnelOptions, type TunnelStats } from '../index.js';
import { lookupAgentFor, proxyAgentFor } from './http-proxy.js';
import { reportStatus } from './sandbox.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';

/**
 * Opens the -D listener with the same tunnel options as the port mappings. Each proxied sandbox is
 * looked up on its first connection; the HTTP proxy (if any) is chosen once, for the stand-in host.
 */
export async function openCliProxy(config: CliConfig, base: Omit<TunnelOptions, 'ports'>, out: Output): Promise<ProxyHandle> {
  const lookup = lookupBaseFor(base);
  const [agent, lookupAgent] = await Promise.all([proxyAgentFor(config, base, out), lookup === undefined ? undefined : lookupAgentFor(config, lookup, out)]);
  const onSandboxStatus = (event: SandboxStatusEvent): void => reportStatus(out, event);
  const options = { ...base, onSandboxStatus, ...(agent ? { agent } : {}), ...(lookupAgent ? { lookupAgent } : {}) };
  const listen = config.proxyListen ?? { port: 0 };
  const { sandbox: _standIn, address: specsAddress, ...tunnelOptions } = options;
  // -D's own address first, then --address, then loopback.
  const address = listen.address ?? specsAddress;
  return openProxy({
    ...tunnelOptions,
    port: listen.port,
    ...(address === undefined ? {} : { address }),
    ...(config.sandbox === undefined ? {} : { sandbox: config.sandbox }),
  });
}

export function announceProxy(out: Output, proxy: ProxyHandle): void {
  out.proxyListening(proxy.addresses, proxy.sandbox);
  const where = proxy.addresses[0];
  if (where) {
    const host = where.family === 'IPv6' ? `[${where.address}]` : where.address;
    out.info(`Proxy use: curl --socks5-hostname ${host}:${where.port} http://<sandbox>:<port>/  or  curl -x http://${host}:${where.port} ...`);
  }
}

/** Stats of the port mappings and the proxy together, for the exit summary. */
export function sumStats(list: readonly TunnelStats[]): TunnelStats {
  const total: TunnelStats = { connections: 0, active: 0, waiting: 0, refused: 0, lingering: 0, bytesSent: 0, bytesReceived: 0, errors: {} };
  for (const s of list) {
    total.connections += s.connections;
    total.active += s.active;
    total.lingering += s.lingering;
    total.waiting += s.waiting;
    total.refused += s.refused;
    total.bytesSent += s.bytesSent;
    total.bytesReceived += s.bytesReceived;
    for (const [code, n] of Object.entries(s.errors)) total.errors[code] = (total.errors[code] ?? 0) + n;
  }
  return total;
}

export function sumTraffic(list: readonly { bytesSent: number; bytesReceived: number }[]): { bytesSent: number; bytesReceived: number } {
  return list.reduce((a, t) => ({ bytesSent: a.bytesSent + t.bytesSent, bytesReceived: a.bytesReceived + t.bytesReceived }), { bytesSent: 0, bytesReceived: 0 });
}
