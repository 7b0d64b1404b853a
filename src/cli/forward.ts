import { ErrorCodes, TunnelError, openTunnel, parsePortSpecs, type TunnelHandle, type TunnelOptions } from '../index.js';
import { EXIT_INTERRUPTED } from './exit-codes.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';
import { untilStopSignal } from './signals.js';
import { prepareSandbox, willLookUp } from './sandbox.js';

/** How long Ctrl-C waits for tunnels to close before exiting anyway. */
const STOP_GRACE_MS = 900;

/** The default command: listen locally, forward each connection, run until Ctrl-C. */
export async function runForward(config: CliConfig, options: Omit<TunnelOptions, 'ports'>, out: Output): Promise<number> {
  const ports = [...new Set(parsePortSpecs(config.specs).map((m) => m.remotePort))];
  const what = config.waitMs > 0 ? `Waiting for port${ports.length > 1 ? 's' : ''} ${ports.join(', ')} in sandbox ${options.sandbox}…` : `Checking sandbox ${options.sandbox}…`;
  // Listen for Ctrl-C before saying anything: a script may interrupt as soon as it reads a line.
  const stopped = untilStopSignal();
  const lookup = willLookUp(options);
  if (config.check || lookup) await out.startSpinner(lookup ? `Looking up sandbox ${options.sandbox}…` : what);
  // Ctrl-C during a long --wait must not need a second press.
  const startedAt = Date.now();
  const onStartupRetry: TunnelOptions['onStartupRetry'] = (r) =>
    out.verbose(`Startup check of port ${r.remotePort}: ${r.error.message}; retry ${r.attempt} in ${r.delayMs} ms`);
  const opening = prepareSandbox(config, options, out, ports)
    .then((prepared) => {
      if (config.check) out.updateSpinner(what);
      return openTunnel({ ...prepared, ports: config.specs, check: config.check, onStartupRetry });
    })
    .catch((err: unknown) => {
      throw gaveUp(err, config.waitMs, Date.now() - startedAt);
    });
  const first = await Promise.race([opening, stopped]);
  if (typeof first === 'string') {
    out.endSpinner(false);
    out.info('Interrupted before the tunnel opened');
    return EXIT_INTERRUPTED;
  }
  const handle: TunnelHandle = first;
  out.endSpinner(true, config.check ? `Sandbox ${handle.sandbox} is reachable` : `Sandbox ${handle.sandbox} is running`);
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

/** After --wait ran out, say so: "nothing is listening" alone reads as if we never waited. */
function gaveUp(err: unknown, waitMs: number, waitedMs: number): unknown {
  if (!(err instanceof TunnelError) || err.code !== ErrorCodes.PORT_CLOSED || waitMs === 0) return err;
  const seconds = (ms: number): number => Math.round(ms / 100) / 10;
  return new TunnelError(ErrorCodes.PORT_CLOSED, `${err.message}; gave up after ${seconds(waitedMs)} s (--wait ${seconds(waitMs)})`, {
    status: err.status,
    proxyError: err.proxyError,
    proxyCode: err.proxyCode,
    host: err.host,
    detail: err.detail,
  });
}
