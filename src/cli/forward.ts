import { ErrorCodes, TunnelError, openTunnel, parsePortSpecs, type ProxyHandle, type TunnelHandle, type TunnelOptions } from '../index.js';
import { EXIT_INTERRUPTED } from './exit-codes.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';
import { announceProxy, openCliProxy, sumStats, sumTraffic } from './proxy-mode.js';
import { untilStopSignal } from './signals.js';
import { untilParentGone } from './parent-watch.js';
import { prepareSandbox, willLookUp } from './sandbox.js';
import { selfLoopError } from './loop-guard.js';
import { DETACH_ID_ENV, registerForward } from './lifecycle/register.js';

/** How long Ctrl-C waits for tunnels to close before exiting anyway. */
const STOP_GRACE_MS = 900;

/**
 * The default command: listen locally (port mappings, and the -D proxy if asked), forward each
 * connection, run until Ctrl-C.
 */
export async function runForward(config: CliConfig, options: Omit<TunnelOptions, 'ports'>, out: Output): Promise<number> {
  const mapping = config.specs.length > 0;
  const ports = mapping ? [...new Set(parsePortSpecs(config.specs).map((m) => m.remotePort))] : [];
  const what = config.waitMs > 0 ? `Waiting for port${ports.length > 1 ? 's' : ''} ${ports.join(', ')} in sandbox ${options.sandbox}…` : `Checking sandbox ${options.sandbox}…`;
  // Listen for Ctrl-C before saying anything: a script may interrupt as soon as it reads a line.
  const stopped = untilStopSignal();
  const lookup = mapping && willLookUp(options);
  if (mapping && (config.check || lookup)) out.startSpinner(lookup ? `Looking up sandbox ${options.sandbox}…` : what);
  // Ctrl-C during a long --wait must not need a second press.
  const startedAt = Date.now();
  // The spinner says it is retrying, and why; without one, -v shows the same line.
  const onStartupRetry: TunnelOptions['onStartupRetry'] = (r) =>
    out.updateSpinner(`${what.replace(/…$/, '')}: retrying (attempt ${r.attempt + 1}) after: ${r.error.message}`);
  if (mapping && config.waitMs > 0 && !config.check) out.info(`--wait with --no-check: each connection waits up to ${config.waitMs / 1000} s for the port; startup does not wait`);
  const opening = openAll(
    mapping
      ? prepareSandbox(config, options, out, ports)
          .then((prepared) => {
            if (config.check && lookup) out.updateSpinner(what);
            return openTunnel({ ...prepared, ports: config.specs, check: config.check, onStartupRetry });
          })
          .catch((err: unknown) => {
            throw gaveUp(err, config.waitMs, Date.now() - startedAt);
          })
      : undefined,
    config.proxyListen ? openCliProxy(config, options, out) : undefined,
  );
  const first = await Promise.race([opening, stopped]);
  if (typeof first === 'string') {
    out.interrupted(first);
    out.endSpinner(false);
    out.info('Interrupted before the tunnel opened');
    return EXIT_INTERRUPTED;
  }
  const [handle, proxy] = first;
  const handles = [handle, proxy].filter((h) => h !== undefined);
  const total = {
    get stats() {
      return sumStats(handles.map((h) => h.stats));
    },
    traffic: () => sumTraffic(handles.map((h) => h.traffic())),
  };
  if (handle) {
    const loop = selfLoopError(handle.addresses, options);
    if (loop !== undefined) {
      await Promise.all([handle.close(), proxy?.close()]);
      throw loop;
    }
  }
  // Known to `tl-tunnel ps` before the first line that says it listens: a script may ask at once.
  const registration = await registerForward(handle, proxy, () => total.stats, config.sandbox, out).catch(async (err: unknown) => {
    await Promise.all(handles.map((h) => h.close()));
    throw err;
  });
  if (handle) {
    if (mapping) out.endSpinner(true, config.check ? `Sandbox ${handle.sandbox} is reachable` : undefined);
    for (const w of handle.warnings) out.warning(w);
    const byMapping = new Map<number, typeof handle.addresses[number][]>();
    for (const a of handle.addresses) byMapping.set(a.mapping, [...(byMapping.get(a.mapping) ?? []), a]);
    for (const list of byMapping.values()) out.listening(handle.sandbox, list[0]?.remotePort ?? 0, list);
  }
  if (proxy) {
    for (const w of proxy.warnings) out.warning(w);
    announceProxy(out, proxy);
  }
  const detachId = process.env[DETACH_ID_ENV];
  out.info(detachId ? `Running in the background as tunnel ${detachId} (pid ${process.pid}); stop it with: tl-tunnel stop ${detachId}` : 'Press Ctrl-C to stop');
  // The starter of a detached tunnel returns now, with everything said so far.
  if (detachId) process.send?.({ type: 'ready' });

  // Events name the connection's own sandbox: in proxy mode each connection has its own.
  for (const h of handles) {
    h.on('warning', (w) => out.warning(w));
    h.on('open', (info) => out.open(info.sandbox, info));
    h.on('retry', (info) => out.retry(info.sandbox, info));
    h.on('close', (e) => out.close(e.sandbox, e));
  }
  out.startStatus(total);

  // A background tunnel outlives its starter by design; any other stops with it.
  const parent = detachId ? undefined : untilParentGone();
  const orphaned = parent?.gone.then((pid) => ({ pid }));
  const signal = await Promise.race([stopped, registration.stopRequested, ...(orphaned ? [orphaned] : [])]);
  parent?.stop();
  if (typeof signal === 'object') {
    out.interrupted('parent');
    out.info(`Stopping: the process that started tl-tunnel (pid ${signal.pid}) has gone away`);
  } else {
    out.interrupted(signal);
  }
  if (signal === 'stop') out.info('Stopping: asked by tl-tunnel stop');
  const active = total.stats.active;
  out.verbose(`${typeof signal === 'object' ? 'parent gone' : signal}: closing ${active} tunnel${active === 1 ? '' : 's'}`);
  await Promise.race([Promise.all(handles.map((h) => h.close())), new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())]);
  out.stopped(total.stats);
  await registration.close();
  return 0;
}

/** Both front ends open, or neither: one that opened is closed again when the other fails. */
async function openAll(tunnel: Promise<TunnelHandle> | undefined, proxy: Promise<ProxyHandle> | undefined): Promise<[TunnelHandle | undefined, ProxyHandle | undefined]> {
  const [t, p] = await Promise.allSettled([tunnel, proxy]);
  if (t.status === 'rejected' || p.status === 'rejected') {
    await Promise.all([t.status === 'fulfilled' ? t.value?.close() : undefined, p.status === 'fulfilled' ? p.value?.close() : undefined]);
    throw t.status === 'rejected' ? t.reason : (p as PromiseRejectedResult).reason;
  }
  return [t.value, p.value];
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
