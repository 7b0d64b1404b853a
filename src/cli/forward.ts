import { openTunnel, type TunnelHandle, type TunnelOptions } from '../index.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';
import { untilStopSignal } from './signals.js';

/** How long Ctrl-C waits for tunnels to close before exiting anyway. */
const STOP_GRACE_MS = 900;

/** The default command: listen locally, forward each connection, run until Ctrl-C. */
export async function runForward(config: CliConfig, options: Omit<TunnelOptions, 'ports'>, out: Output): Promise<number> {
  const ports = [...new Set(config.specs)].length;
  const what = config.waitMs > 0 ? `Waiting for port${ports > 1 ? 's' : ''} ${config.specs.join(', ')} in sandbox ${options.sandbox}…` : `Checking sandbox ${options.sandbox}…`;
  if (config.check) await out.startSpinner(what);
  const stopped = untilStopSignal();
  const handle: TunnelHandle = await openTunnel({ ...options, ports: config.specs, check: config.check });
  if (config.check) out.endSpinner(true, `Sandbox ${handle.sandbox} is reachable`);
  for (const w of handle.warnings) out.warning(w);
  const byMapping = new Map<number, typeof handle.addresses[number][]>();
  for (const a of handle.addresses) byMapping.set(a.mapping, [...(byMapping.get(a.mapping) ?? []), a]);
  for (const list of byMapping.values()) out.listening(handle.sandbox, list[0]?.remotePort ?? 0, list);
  out.info('Press Ctrl-C to stop');

  handle.on('warning', (w) => out.warning(w));
  handle.on('open', (info) => out.open(handle.sandbox, info));
  handle.on('retry', (info) => out.retry(handle.sandbox, info));
  handle.on('close', (e) => out.close(handle.sandbox, e));

  const signal = await stopped;
  out.verbose(`${signal}: closing ${handle.stats.active} tunnel${handle.stats.active === 1 ? '' : 's'}`);
  await Promise.race([handle.close(), new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())]);
  out.stopped(handle.stats);
  return 0;
}
