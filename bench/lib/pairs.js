// The relays under test, each as a "client" process and a "server" process in a chain in front of
// the target, like the tunnel's layout: driver -> client -> server -> target.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, waitListening } from './proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'bin', 'tl-tunnel.js');
const SERVER_CLI = path.join(ROOT, 'bin', 'tl-tunnel-server.js');
const NODE_RELAY = path.join(ROOT, 'bench', 'node-relay.js');
const TOKEN = 'tl_apiKey_bench0000000000000000';

export const jsonLine = (key) => (text) => {
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line);
      if (o[key] !== undefined) return o;
    } catch {
      // a partial line: wait for the rest
    }
  }
  return undefined;
};

export function hasSocat() {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** No relay: the driver talks to the target itself. */
export function direct(target) {
  return { name: 'direct TCP', entryPort: target.port, clientPid: undefined, stop: async () => {} };
}

async function nodeRelay(to) {
  const h = await startChild(process.execPath, [NODE_RELAY, String(to)], { ready: jsonLine('port'), name: 'node relay' });
  return { ...h, port: h.match.port };
}

/** Two chained plain Node TCP relays (pipe both ways). */
export async function nodeRelays(target) {
  const server = await nodeRelay(target.port);
  const client = await nodeRelay(server.port);
  return { name: '2 Node relays', entryPort: client.port, clientPid: client.pid, stop: () => Promise.all([client.stop(), server.stop()]) };
}

async function socat(to) {
  const port = await freePort();
  // 128 KiB buffers (the default 8 KiB would make socat, not the machine, the bottleneck).
  const h = await startChild('socat', ['-b', '131072', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,nodelay`, `TCP:127.0.0.1:${to},nodelay`], { name: 'socat' });
  await waitListening(port);
  return { ...h, port };
}

/** Two chained socat processes (a C relay; forks one process per connection). */
export async function socatRelays(target) {
  const server = await socat(target.port);
  const client = await socat(server.port);
  return { name: '2 socat', entryPort: client.port, clientPid: client.pid, stop: () => Promise.all([client.stop(), server.stop()]) };
}

/** A self-signed certificate for 127.0.0.1 in a temp dir: { dir, cert, key, cleanup() }. */
export function makeCert() {
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-bench-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { dir, cert, key, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The reference server (bin/tl-tunnel-server.js), over ws or, given a cert, wss. */
export async function tunnelServer(cert) {
  const tls = cert ? ['--cert', cert.cert, '--key', cert.key] : [];
  const h = await startChild(process.execPath, [SERVER_CLI, '--port', '0', '--json', '--token', TOKEN, ...tls], { ready: jsonLine('url'), name: 'tl-tunnel-server' });
  return { ...h, url: h.match.url, cert };
}

/** Environment of a CLI child: the bench token, no colour, nothing inherited that changes behaviour. */
export function cliEnv(extra = {}) {
  const env = { ...process.env, TENSORLAKE_API_KEY: TOKEN, NO_COLOR: '1', HOME: '/nonexistent-home' };
  for (const name of ['TENSORLAKE_PAT', 'TENSORLAKE_SANDBOX_PROXY_URL', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS']) delete env[name];
  return { ...env, ...extra };
}

/** The tl-tunnel CLI (`cli`: another build's bin/tl-tunnel.js) forwarding a free 127.0.0.1 port to `targetPort` through `server`. */
export async function tunnelClient(server, targetPort, { nodeArgs = [], env = {}, cli = CLI } = {}) {
  const extra = server.cert ? { NODE_EXTRA_CA_CERTS: server.cert.cert, ...env } : env;
  const args = [...nodeArgs, cli, '--no-check', '--proxy-url', server.url, 'bench', `127.0.0.1:0:${targetPort}`];
  const h = await startChild(process.execPath, args, { env: cliEnv(extra), ready: (t) => t.match(/Forwarding 127\.0\.0\.1:(\d+)/), name: 'tl-tunnel' });
  return { ...h, port: Number(h.match[1]) };
}

/** tl-tunnel client + reference server as one relay pair. */
export async function tunnelPair(target, cert, options) {
  const server = await tunnelServer(cert);
  const client = await tunnelClient(server, target.port, options);
  return {
    name: cert ? 'tl-tunnel wss' : 'tl-tunnel ws',
    entryPort: client.port,
    clientPid: client.pid,
    client,
    server,
    stop: () => Promise.all([client.stop(), server.stop()]),
  };
}
