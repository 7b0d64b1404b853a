// Helpers for fault and reliability tests: the reference server as a child process (so it can be
// killed), endless echo flows, and misbehaving upgrade servers built on raw sockets.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { CANARY_KEY, SERVER_CLI, cliEnv, eventually, listen, randomBytes } from './index.js';

/**
 * Runs bin/tl-tunnel-server.js on `port` (0: a free one) and resolves once it printed its JSON
 * listening line. Returns { child, port, url, exited, stderr() }.
 */
export function startServerProcess(port = 0, extraArgs = []) {
  const child = spawn(process.execPath, [SERVER_CLI, '--json', '--port', String(port), '--token', CANARY_KEY, ...extraArgs], {
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tl-tunnel-server did not start:\n${stderr}`));
    }, 15_000);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const event = JSON.parse(stdout.slice(0, nl));
      resolve({ child, port: event.port, url: event.url, exited, stderr: () => stderr });
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`tl-tunnel-server exited with ${code}:\n${stderr}`));
    });
  });
}

/** Kills a child (if still running) and waits for it to be gone. */
export async function killChild(child, signal = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'close');
  child.kill(signal);
  await gone;
}

const FLOW_CHUNK = randomBytes(64 * 1024);

/**
 * A connection to 127.0.0.1:port that writes as fast as backpressure allows, forever, and counts
 * what comes back. Returns { socket, sent, received, error, closed } (closed: a promise).
 */
export function startFlow(port) {
  const socket = net.connect(port, '127.0.0.1');
  const flow = { socket, sent: 0, received: 0, error: undefined, closed: undefined, closedAt: 0 };
  const pump = () => {
    let ok = true;
    while (ok && socket.writable) {
      ok = socket.write(FLOW_CHUNK);
      flow.sent += FLOW_CHUNK.length;
    }
  };
  socket.on('connect', pump);
  socket.on('drain', pump);
  socket.on('data', (d) => (flow.received += d.length));
  socket.on('error', (err) => (flow.error = err));
  flow.closed = closed(socket).then(() => (flow.closedAt = Date.now()));
  return flow;
}

/** Resolves when the socket has closed, whether or not it failed (events.once rejects on 'error'). */
export function closed(socket) {
  return new Promise((resolve) => (socket.destroyed && socket.closed ? resolve() : socket.once('close', () => resolve())));
}

/** Waits for a line matching `pattern` on the CLI's stderr (it may trail the JSON event on stdout). */
export function stderrLine(cli, pattern) {
  return eventually(() => pattern.test(cli.stderr()), { timeoutMs: 5000, what: `a stderr line matching ${pattern}; stderr:\n${cli.stderr()}` });
}

/** Resolves when `promise` does, or rejects after `ms` naming `what`. */
export function within(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/**
 * A WebSocket server that completes every upgrade and then never reads again: no data, no pong,
 * no close. Returns { url, connections, close() }.
 */
export async function startBlackhole() {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const connections = [];
  wss.on('connection', (ws) => {
    ws._socket.pause();
    ws.on('error', () => {});
    connections.push(ws);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    connections,
    close: () => {
      for (const ws of connections) ws.terminate();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/**
 * An upgrade server that answers the first upgrades from `statuses` (e.g. [503, 429, 503]), or
 * every upgrade with `forever`, and passes the others through, bytes untouched, to `upstreamPort`
 * (a reference server). Returns { url, answered: number[], close() }.
 */
export async function startFlakyProxy({ statuses = [], forever, upstreamPort }) {
  const answered = [];
  const sockets = new Set();
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const status = forever ?? statuses[answered.length];
    if (status !== undefined) {
      answered.push(status);
      const body = JSON.stringify({ error: 'try again later', code: 'BUSY' });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    answered.push(101);
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    upstream.write(`${raw}\r\n`);
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream).pipe(socket);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    answered,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** A TCP service that hands each connection to `handler` and counts open sockets. */
export async function startService(handler) {
  const sockets = new Set();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    handler(s);
  });
  const port = await listen(server);
  return {
    port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
