import { Duplex } from 'node:stream';
import { ErrorCodes, TunnelError, forwardStream, parsePortSpec, type TunnelOptions } from '../index.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';
import { exitCodeFor } from './exit-codes.js';
import { prepareSandbox } from './sandbox.js';

/** --stdio: stdin/stdout over one tunnel, for SSH's ProxyCommand and pipes. */
export async function runStdio(config: CliConfig, options: Omit<TunnelOptions, 'ports'>, out: Output): Promise<number> {
  if (config.specs.length !== 1 || !/^[0-9]+$/.test(config.specs[0] ?? '')) {
    throw new TunnelError(ErrorCodes.USAGE, 'With --stdio give exactly one sandbox port, e.g. tl-tunnel --stdio sbx-123 22');
  }
  const { remotePort } = parsePortSpec(config.specs[0] as string);
  const stream = Duplex.from({ readable: process.stdin, writable: process.stdout });
  const prepared = await prepareSandbox(config, options, out, [remotePort]);
  const result = await forwardStream({
    ...prepared,
    remotePort,
    stream,
    onOpen: () => out.verbose(`Tunnel open: stdio -> ${options.sandbox}:${remotePort}`),
    onRetry: (r) => out.verbose(`${r.error.message}; retry ${r.attempt} in ${r.delayMs} ms`),
  });
  out.verbose(`Tunnel closed: ${result.bytesSent} bytes sent, ${result.bytesReceived} received (${result.reason})`);
  if (result.error) {
    out.fatal(result.error);
    return exitCodeFor(result.error.code);
  }
  return 0;
}
