import { createServer } from 'node:net';

/**
 * Linux refuses 127.0.0.1:P while another socket holds 0.0.0.0:P (and ::1:P while one holds
 * [::]:P). macOS, like the BSDs, lets the more specific bind succeed: the tunnel would then quietly
 * take the loopback share of another program's port. So on darwin the wildcard of the same family is
 * tried first (as get-port does) and a taken one counts as EADDRINUSE, the error Linux gives itself.
 */
export function wildcardToProbe(platform: NodeJS.Platform, address: string, port: number): string | undefined {
  // Port 0 lets the kernel choose one no socket of the family holds, wildcard or not.
  if (platform !== 'darwin' || port === 0) return undefined;
  if (address === '127.0.0.1') return '0.0.0.0';
  if (address === '::1') return '::';
  return undefined;
}

/**
 * The error the loopback bind is refused with, given how binding the wildcard went (`probeCode`:
 * undefined when it bound). Only "in use" refuses: no IPv6 at all, or a privileged port, is for
 * the real bind to report.
 */
export function busyFromProbe(address: string, port: number, wildcard: string, probeCode: string | undefined): NodeJS.ErrnoException | undefined {
  if (probeCode !== 'EADDRINUSE') return undefined;
  const shown = wildcard.includes(':') ? `[${wildcard}]:${port}` : `${wildcard}:${port}`;
  return Object.assign(new Error(`listen EADDRINUSE: ${shown} is taken, which covers ${address}`), { code: 'EADDRINUSE', syscall: 'listen', address, port });
}

/** Binds `wildcard`:`port` and lets go again; resolves to the error code, or undefined when it bound. */
export function probeBind(wildcard: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EUNKNOWN'));
    // ipv6Only: [::] must test IPv6 alone, so a taken 0.0.0.0 does not also refuse ::1 (as on Linux).
    server.listen({ host: wildcard, port, exclusive: true, ipv6Only: wildcard === '::' }, () => server.close(() => resolve(undefined)));
  });
}

/** Before binding a loopback address: the EADDRINUSE a taken wildcard means on this platform, if any. */
export async function wildcardConflict(address: string, port: number, platform: NodeJS.Platform = process.platform): Promise<NodeJS.ErrnoException | undefined> {
  const wildcard = wildcardToProbe(platform, address, port);
  return wildcard === undefined ? undefined : busyFromProbe(address, port, wildcard, await probeBind(wildcard, port));
}

/**
 * Why a bind was refused with EACCES, per platform: on Windows it is almost always a port inside a
 * range the system reserved (Hyper-V, WSL, Docker take whole ranges), not a missing privilege.
 */
export function accessDeniedReason(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32'
    ? 'access denied: Windows reserves this port (list the reserved ranges with: netsh int ipv4 show excludedportrange protocol=tcp)'
    : 'permission denied (ports below 1024 need privileges)';
}
