// Real HTTP CONNECT proxies for tests: Debian's tinyproxy with its own config, and a raw one that
// answers every CONNECT with a fixed refusal. Plus a throwaway TLS certificate for wss://.
import { selfSignedCert } from './tls.js';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { freePort, eventually } from './index.js';

export const TINYPROXY = ['/usr/bin/tinyproxy', '/usr/sbin/tinyproxy'].find((p) => existsSync(p));

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Starts tinyproxy in the foreground on 127.0.0.1 with a private config. `connectPorts` limits the
 * ports CONNECT may reach (tinyproxy answers 403 to others); by default every port is allowed.
 * `log()` returns its log so far (one CONNECT line per tunnel).
 */
export async function startTinyproxy({ connectPorts = [] } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tl-tinyproxy-'));
  const port = await freePort();
  const logFile = path.join(dir, 'tinyproxy.log');
  const conf = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    'MaxClients 200',
    'Allow 127.0.0.1',
    `LogFile "${logFile}"`,
    'LogLevel Connect',
    ...connectPorts.map((p) => `ConnectPort ${p}`),
  ].join('\n');
  const confFile = path.join(dir, 'tinyproxy.conf');
  await writeFile(confFile, `${conf}\n`);
  const child = spawn(TINYPROXY, ['-d', '-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = once(child, 'exit');
  await eventually(() => child.exitCode === null && canConnect(port), { timeoutMs: 10_000, what: `tinyproxy on port ${port} (${stderr})` });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    /** CONNECT requests tinyproxy logged for host:port. */
    connects: (hostPort) => ((existsSync(logFile) ? readFileSync(logFile, 'utf8') : '').match(new RegExp(`CONNECT ${hostPort.replace(/[.[\]]/g, '\\$&')} `, 'g')) ?? []).length,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A proxy that answers every CONNECT with `status` and records the request heads it got; `body`
 * (text, or an object sent as JSON) is what it says, e.g. quoting the password it was given.
 */
export async function startRefusingProxy(status = 407, body = 'denied') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain' : 'application/json';
  const heads = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let head = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      head += d;
      if (!head.includes('\r\n\r\n')) return;
      heads.push(head.slice(0, head.indexOf('\r\n\r\n')));
      const reason = status === 407 ? 'Proxy Authentication Required' : status === 401 ? 'Unauthorized' : 'Forbidden';
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return { port, url: `http://127.0.0.1:${port}`, heads, close: () => new Promise((r) => server.close(() => r())) };
}

/** A self-signed certificate for 127.0.0.1 and localhost; `caFile` is for NODE_EXTRA_CA_CERTS. */
/** A self-signed certificate for the TLS reference server (see helpers/tls.js). */
export const makeCertificate = async () => selfSignedCert();
