import { isLoopbackHost, redact, type TunnelServerHandle } from '../../index.js';

/**
 * The --proxy-url a client on this machine should use: a wildcard bind (0.0.0.0, ::) is not an
 * address a client can connect to, and the CLI refuses clear text to a host it cannot tell is local.
 */
export function clientProxyUrl(server: Pick<TunnelServerHandle, 'host' | 'port' | 'url'>): { url: string; insecure: boolean } {
  const scheme = server.url.startsWith('https:') ? 'https' : 'http';
  const host = server.host === '0.0.0.0' ? '127.0.0.1' : server.host === '::' ? '::1' : server.host;
  const shown = host.includes(':') ? `[${host}]` : host;
  return { url: `${scheme}://${shown}:${server.port}`, insecure: scheme === 'http' && !isLoopbackHost(host) };
}

/**
 * The one-line example printed at startup: the server's own token when it made one up, else where
 * the user put theirs (never echoed: it may be a real secret reused).
 */
export function tryHint(server: Pick<TunnelServerHandle, 'host' | 'port' | 'url' | 'token'>, source: 'generated' | 'flag' | 'env', controlPlane = false, platform: NodeJS.Platform = process.platform): string {
  const { url, insecure } = clientProxyUrl(server);
  const flags = insecure ? ' --allow-insecure' : '';
  // undefined: the key is in TL_TUNNEL_SERVER_TOKEN, and the command reads it from there.
  const key = source === 'generated' ? server.token : source === 'flag' ? '<your --token>' : undefined;
  // With a control plane the client looks the sandbox up here, as it would at Tensorlake.
  const vars: [string, string | undefined][] = [['TENSORLAKE_API_KEY', key], ...(controlPlane ? [['TENSORLAKE_SANDBOX_API_URL', url] as [string, string]] : [])];
  const command = controlPlane ? `tl-tunnel${flags} <sandbox> <port>` : `tl-tunnel${flags} --proxy-url ${url} local <port>`;
  // PowerShell, Windows' shell, has no `NAME=value command`: it sets the variables first.
  if (platform === 'win32') {
    const set = vars.map(([name, value]) => `$env:${name}=${value === undefined ? '$env:TL_TUNNEL_SERVER_TOKEN' : `'${value}'`}; `);
    return `Try (PowerShell): ${set.join('')}${command}`;
  }
  return `Try: ${vars.map(([name, value]) => `${name}=${value ?? '"$TL_TUNNEL_SERVER_TOKEN"'} `).join('')}${command}`;
}

/** One line per upgrade for -v: who, method, path, target port and the answer; never a header. */
export function upgradeLine(e: { remote: string; method: string; url: string; status: number; code?: string; id?: number }): string {
  const query = e.url.indexOf('?');
  const path = query < 0 ? e.url : e.url.slice(0, query);
  const port = new URLSearchParams(query < 0 ? '' : e.url.slice(query + 1)).getAll('port').join(',') || '-';
  const clip = (text: string): string => JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text).slice(1, -1);
  const outcome = e.id === undefined ? `${e.status} ${e.code ?? ''}`.trim() : `${e.status} tunnel #${e.id}`;
  return redact(`${e.remote} ${clip(e.method)} ${clip(path)} port ${clip(port)} -> ${outcome}`);
}
