import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, lstatSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { ErrorCodes, TunnelError } from '../errors.js';
import { controlDirectory, ensureControlDirectory, notPrivate } from './directory.js';
import { readLine } from './line-socket.js';
import { CONTROL_VERSION, newToken, newTunnelId, parseLine, type ControlResponse, type TunnelEntry, type TunnelStatus } from './protocol.js';

export interface ControlEndpointOptions {
  /** The control directory; default controlDirectory(). */
  dir?: string;
  /** The tunnel's id; default a new one. A detached tunnel gets the id its starter already printed. */
  id?: string;
  sandbox?: string;
  detached?: boolean;
  log?: string;
  /** The figures of the moment, asked for at each status request. */
  status: () => Pick<TunnelStatus, 'forwards' | 'connections' | 'active' | 'bytesSent' | 'bytesReceived' | 'lastError'>;
  /** The first stop request; later ones are answered but call nothing. */
  onStop: () => void;
}

export interface ControlEndpointHandle {
  readonly id: string;
  readonly dir: string;
  readonly endpoint: string;
  /** Stops answering and removes the entry and the socket; safe to call more than once. */
  close(): Promise<void>;
}

/** Control requests are rare and tiny: a few at once is plenty, and a flood costs nothing more. */
const MAX_CLIENTS = 8;
const REQUEST_TIMEOUT_MS = 5000;

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function sameToken(given: unknown, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Serves a running tunnel's control endpoint (a Unix socket in the control directory, a named pipe
 * on Windows) and writes its entry, so that `tl-tunnel ps` lists it and `tl-tunnel stop` stops it
 * without signals or open ports.
 */
export async function openControlEndpoint(options: ControlEndpointOptions): Promise<ControlEndpointHandle> {
  const dir = ensureControlDirectory(options.dir ?? controlDirectory());
  const id = options.id ?? newTunnelId();
  const token = newToken();
  const endpoint = process.platform === 'win32' ? `\\\\.\\pipe\\tl-tunnel-${id}-${randomBytes(8).toString('hex')}` : path.join(dir, `${id}.sock`);
  const entryPath = path.join(dir, `${id}.json`);
  if (process.platform !== 'win32') clearStaleSocket(endpoint);
  const startedAt = new Date().toISOString();
  let stopRequested = false;

  const answer = async (socket: Socket): Promise<void> => {
    const request = parseLine((await readLine(socket, REQUEST_TIMEOUT_MS)) ?? '');
    if (request === undefined) return void socket.destroy();
    let response: ControlResponse;
    if (request.v !== CONTROL_VERSION) response = { v: CONTROL_VERSION, ok: false, error: `this tunnel speaks control version ${CONTROL_VERSION}` };
    else if (!sameToken(request.token, token)) response = { v: CONTROL_VERSION, ok: false, error: 'not authorized' };
    else if (request.op !== 'status' && request.op !== 'stop') response = { v: CONTROL_VERSION, ok: false, error: 'unknown request' };
    else {
      const status: TunnelStatus = { id, pid: process.pid, ...(options.sandbox === undefined ? {} : { sandbox: options.sandbox }), startedAt, detached: options.detached === true, ...(options.log ? { log: options.log } : {}), ...options.status() };
      response = { v: CONTROL_VERSION, ok: true, status, ...(request.op === 'stop' ? { stopping: true } : {}) };
    }
    socket.end(`${JSON.stringify(response)}\n`);
    if (response.ok && response.stopping && !stopRequested) {
      stopRequested = true;
      options.onStop();
    }
  };

  const server: Server = createServer((socket) => {
    socket.on('error', () => {});
    void answer(socket);
  });
  server.maxConnections = MAX_CLIENTS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new TunnelError(ErrorCodes.CONTROL, `Cannot serve the tunnel's control endpoint ${endpoint} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err })));
    server.listen(endpoint, () => resolve());
  });
  server.unref();
  if (process.platform !== 'win32') chmodSync(endpoint, 0o600);

  const entry: TunnelEntry = { v: CONTROL_VERSION, id, pid: process.pid, endpoint, token, ...(options.sandbox === undefined ? {} : { sandbox: options.sandbox }), detached: options.detached === true, ...(options.log ? { log: options.log } : {}), startedAt };
  // Written whole or not at all: `ps` never reads half an entry.
  const partial = `${entryPath}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(entry), { mode: 0o600 });
  renameSync(partial, entryPath);

  let closing: Promise<void> | undefined;
  return {
    id,
    dir,
    endpoint,
    close() {
      closing ??= new Promise<void>((resolve) => {
        unlinkQuietly(entryPath);
        server.close(() => resolve());
        if (process.platform !== 'win32') unlinkQuietly(endpoint);
      });
      return closing;
    },
  };
}

/** A socket left by a tunnel that died may be replaced; anything else at that path is not ours to remove. */
function clearStaleSocket(endpoint: string): void {
  let stats;
  try {
    stats = lstatSync(endpoint);
  } catch {
    return;
  }
  const why = notPrivate(stats, 'socket');
  if (why) throw new TunnelError(ErrorCodes.CONTROL, `${endpoint} ${why}; it is not trusted and was left alone`);
  unlinkQuietly(endpoint);
}
