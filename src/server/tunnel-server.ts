import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { usageError } from '../errors.js';
import { TUNNEL_PATH } from '../config/proxy-url.js';
import { formatHostPort } from '../config/host-port.js';
import { Relay, type RelayResult } from '../relay/relay.js';
import { generateToken, makeAuthChecker } from './auth.js';
import { replyJson } from './http-reply.js';
import { parseTargetPort } from './parse-port.js';
import { ControlPlane, type SandboxRecordInput } from './control-plane.js';

export interface TunnelServerOptions {
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Bearer token clients must send; generated when absent (read it from `handle.token`). */
  token?: string;
  /** Only these target ports may be opened; default any. */
  allow?: readonly number[];
  /** Serve wss:// with this PEM certificate and key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Open tunnels at once; further upgrades get 503. Default 1024. */
  maxConnections?: number;
  /** Largest frame accepted from a client. Default 16 MiB. */
  maxPayload?: number;
  /** Close tunnels that received nothing (no data, ping or pong) for this long; 0 = never (default). */
  idleTimeoutMs?: number;
  /**
   * Ping every tunnel this often and drop one whose client shows no sign of life for two intervals
   * (a client that vanished behind a dropped link), resetting its target socket. Default 30000; 0 = off.
   */
  keepaliveMs?: number;
  /** Time allowed to send the upgrade request's headers (slowloris guard). Default 10000. */
  headersTimeoutMs?: number;
  /**
   * After the target ends its side, keep the tunnel open while the client still sends, until idle
   * this long. Default 0: close as soon as the target's data is sent, as a proxy does, so a client
   * reading to EOF (HTTP/1.0, `nc`) sees the end at once.
   */
  lingerMs?: number;
  /**
   * Serve a sandbox control plane over these records (GET /sandboxes/<id-or-name>, POST .../resume),
   * and refuse tunnels to sandboxes that are unknown (404) or not running (502).
   */
  sandboxes?: readonly SandboxRecordInput[];
  /** A personal access token also accepted; requests with it must carry the organization and project headers. */
  pat?: string;
}

export interface ServerTunnelEnd extends RelayResult {
  id: number;
  port: number;
}

export interface TunnelServerEvents {
  /** Every upgrade request, before it is judged (tests read its headers). */
  request: [IncomingMessage];
  /** Every control-plane request (/sandboxes/...), when the server has one. */
  control: [IncomingMessage];
  /** A request refused with this status. */
  reject: [{ status: number; error: string; code: string; url: string; method: string; remote: string }];
  open: [{ id: number; port: number; url: string; method: string; remote: string }];
  close: [ServerTunnelEnd];
}

export interface TunnelServerHandle extends EventEmitter<TunnelServerEvents> {
  readonly host: string;
  readonly port: number;
  /** Base URL to give clients as --proxy-url (http://host:port or https://host:port). */
  readonly url: string;
  readonly token: string;
  /** Tunnels open now. */
  readonly activeTunnels: number;
  /** Closes every tunnel and stops listening; safe to call more than once. */
  close(): Promise<void>;
}

const TARGET_HOST = '127.0.0.1';

function remoteOf(req: IncomingMessage): string {
  const { remoteAddress = '?', remotePort = 0 } = req.socket;
  return formatHostPort(remoteAddress, remotePort);
}

/** Printable ASCII without spaces: what a client can send after `Bearer `. */
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;

class TunnelServer extends EventEmitter<TunnelServerEvents> implements TunnelServerHandle {
  host = '';
  port = 0;
  url = '';
  readonly token: string;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly isAuthorized: (header: string | undefined) => boolean;
  private readonly controlPlane: ControlPlane | undefined;
  private readonly relays = new Set<Relay>();
  private readonly lastHeard = new Map<Relay, number>();
  private pending = 0;
  private nextId = 1;
  private sweeper: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  constructor(
    private readonly options: TunnelServerOptions,
    WebSocketServerClass: typeof WebSocketServer,
  ) {
    super();
    this.token = options.token ?? generateToken();
    this.controlPlane = options.sandboxes || options.pat ? new ControlPlane(options.sandboxes, { token: this.token, pat: options.pat, selfUrl: () => this.url }) : undefined;
    this.isAuthorized = this.controlPlane ? (h) => this.controlPlane?.authorized(h) === true : makeAuthChecker(this.token);
    const headersTimeout = options.headersTimeoutMs ?? 10_000;
    const serverOptions = {
      headersTimeout,
      requestTimeout: headersTimeout,
      // Node enforces these timeouts only when it sweeps its connections, every 30 s by default:
      // sweep often enough that a slowloris client is cut close to its deadline.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    };
    this.http = options.tls
      ? createHttpsServer({ ...serverOptions, handshakeTimeout: headersTimeout, cert: options.tls.cert, key: options.tls.key })
      : createHttpServer(serverOptions);
    this.wss = new WebSocketServerClass({ noServer: true, perMessageDeflate: false, skipUTF8Validation: true, clientTracking: false, maxPayload: options.maxPayload ?? 16 * 1024 * 1024 });
    this.http.on('request', (req, res) => {
      try {
        this.onRequest(req, res);
      } catch {
        // A request this server did not foresee must cost that request only, never the process and
        // every tunnel it carries.
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: 'Internal error', code: 'INTERNAL' }));
      }
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.onUpgrade(req, socket, head);
      } catch {
        this.reject(socket, req, 500, 'Internal error', 'INTERNAL');
      }
    });
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') replyJson(socket, 408, 'Request headers took too long', 'REQUEST_TIMEOUT');
      else if (err.code === 'HPE_HEADER_OVERFLOW') replyJson(socket, 431, 'Request headers too large', 'HEADERS_TOO_LARGE');
      else replyJson(socket, 400, 'Bad request', 'BAD_REQUEST');
    });
    const idle = options.idleTimeoutMs ?? 0;
    if (idle > 0) {
      this.sweeper = setInterval(() => {
        const now = Date.now();
        for (const [relay, at] of this.lastHeard) if (now - at > idle) relay.close(1001, 'idle timeout');
      }, Math.max(50, Math.floor(idle / 4))).unref();
    }
    const keepalive = options.keepaliveMs ?? 30_000;
    if (keepalive > 0) {
      this.pinger = setInterval(() => {
        for (const relay of this.relays) relay.keepaliveTick();
      }, keepalive).unref();
    }
  }

  get activeTunnels(): number {
    return this.relays.size;
  }

  listen(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port ?? 0, host, () => {
        this.http.off('error', reject);
        const address = this.http.address();
        if (address === null || typeof address === 'string') throw new Error('server has no address');
        this.host = address.address;
        this.port = address.port;
        const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.url = `${this.options.tls ? 'https' : 'http'}://${shownHost}:${address.port}`;
        resolve();
      });
    });
  }

  private reject(socket: Duplex, req: IncomingMessage, status: number, error: string, code: string): void {
    this.emit('reject', { status, error, code, url: req.url ?? '', method: req.method ?? '', remote: remoteOf(req) });
    replyJson(socket, status, error, code);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.controlPlane?.handle(req, res)) return void this.emit('control', req);
    const tunnel = req.url?.startsWith(TUNNEL_PATH) === true;
    const body = JSON.stringify(tunnel ? { error: 'WebSocket upgrade required', code: 'UPGRADE_REQUIRED' } : { error: 'Not found', code: 'NOT_FOUND' });
    res.writeHead(tunnel ? 426 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    this.emit('request', req);
    if (this.closing) return this.reject(socket, req, 503, 'Server is shutting down', 'SHUTTING_DOWN');
    // The raw request target, not a normalised URL: dot segments, %2e or an absolute-form target
    // name other endpoints as far as anything in front of this server is concerned.
    const requestTarget = req.url ?? '';
    const query = requestTarget.indexOf('?');
    const path = query < 0 ? requestTarget : requestTarget.slice(0, query);
    if (path !== TUNNEL_PATH) return this.reject(socket, req, 404, `No such endpoint; tunnels are at ${TUNNEL_PATH}`, 'NOT_FOUND');
    if (!this.isAuthorized(req.headers.authorization)) return this.reject(socket, req, 401, 'Missing or invalid bearer token', 'UNAUTHORIZED');
    const refused = this.controlPlane?.refuseTunnel(req);
    if (refused) return this.reject(socket, req, refused.status, refused.error, refused.code);
    const port = parseTargetPort(new URLSearchParams(query < 0 ? '' : requestTarget.slice(query + 1)));
    if (port === undefined) return this.reject(socket, req, 400, 'port must be one integer from 1 to 65535', 'INVALID_PORT');
    if (this.options.allow && !this.options.allow.includes(port)) return this.reject(socket, req, 400, `port ${port} is not allowed on this server`, 'PORT_NOT_ALLOWED');
    if (this.relays.size + this.pending >= (this.options.maxConnections ?? 1024)) {
      return this.reject(socket, req, 503, 'Too many open tunnels', 'TOO_MANY_CONNECTIONS');
    }
    // The slot is given back exactly once, on whichever path ends the upgrade: a target error, a
    // relay started, or the socket closing first (ws refuses a bad key, method or version by
    // closing it without calling back; a client may leave while the target connects).
    this.pending += 1;
    let held = true;
    const release = (): boolean => {
      if (!held) return false;
      held = false;
      this.pending -= 1;
      return true;
    };
    const target = connect({ host: TARGET_HOST, port, noDelay: true, allowHalfOpen: true });
    const onTargetError = (err: NodeJS.ErrnoException): void => {
      if (!release()) return;
      if (err.code === 'EMFILE' || err.code === 'ENFILE') {
        this.reject(socket, req, 503, `The tunnel server ran out of file descriptors (${err.code}) while connecting to ${TARGET_HOST}:${port}; try again later`, 'OUT_OF_FILE_DESCRIPTORS');
      } else {
        this.reject(socket, req, 502, `Nothing accepted a connection on ${TARGET_HOST}:${port} (${err.code ?? 'error'})`, 'TARGET_UNREACHABLE');
      }
    };
    target.once('error', onTargetError);
    target.once('connect', () => {
      target.off('error', onTargetError);
      target.on('error', () => {});
      target.pause();
      if (!held || socket.destroyed || this.closing) {
        release();
        target.destroy();
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        release();
        this.startRelay(ws, target, port, req);
      });
    });
    socket.once('close', () => {
      if (release()) target.destroy();
    });
  }

  private startRelay(ws: WebSocket, target: Socket, port: number, req: IncomingMessage): void {
    const id = this.nextId++;
    const relay: Relay = new Relay(ws, target, {
      lingerMs: this.options.lingerMs ?? 0,
      onEnd: (result) => {
        this.relays.delete(relay);
        this.lastHeard.delete(relay);
        this.emit('close', { ...result, id, port });
        if (this.relays.size === 0) this.onDrained?.();
      },
    });
    this.relays.add(relay);
    if (this.sweeper) {
      const heard = (): void => void this.lastHeard.set(relay, Date.now());
      heard();
      ws.on('message', heard);
      ws.on('ping', heard);
      ws.on('pong', heard);
    }
    this.emit('open', { id, port, url: req.url ?? '', method: req.method ?? '', remote: remoteOf(req) });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper);
      clearInterval(this.pinger);
      const drained = new Promise<void>((resolve) => {
        this.onDrained = resolve;
        if (this.relays.size === 0) resolve();
      });
      for (const relay of this.relays) relay.close(1001, 'server stop');
      const stopped = new Promise<void>((resolve) => this.http.close(() => resolve()));
      // Connections that have not sent a request yet (a client's warm connections, a slow sender)
      // will get no tunnel from a stopping server: close them now rather than at their timeout.
      // Upgraded sockets are no longer the HTTP server's, so the tunnels above are not touched.
      this.http.closeAllConnections();
      await Promise.all([drained, stopped]);
    })();
    return this.closing;
  }
}

/**
 * Starts the sandbox side of the tunnel protocol: Bearer auth, JSON errors (400/401/404/502), and a
 * relay from each WebSocket to 127.0.0.1:<port>. For tests and for trying tl-tunnel offline.
 */
export async function createTunnelServer(options: TunnelServerOptions = {}): Promise<TunnelServerHandle> {
  if (options.allow?.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw usageError('Invalid option allow: ports must be integers from 1 to 65535');
  }
  if (options.token !== undefined && options.token.length === 0) throw usageError('Invalid option token: it must not be empty');
  if (options.token !== undefined && !TOKEN_SHAPE.test(options.token)) {
    throw usageError('Invalid option token: it contains spaces, control or non-ASCII characters, which no client can send in a Bearer header');
  }
  const keepalive = options.keepaliveMs;
  if (keepalive !== undefined && (!Number.isInteger(keepalive) || keepalive < 0)) throw usageError('Invalid option keepaliveMs: expected a whole number of milliseconds from 0');
  for (const name of ['maxConnections', 'maxPayload', 'headersTimeoutMs'] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw usageError(`Invalid option ${name}: expected a whole number from 1`);
  }
  // ws loads only when a server is made: the client CLI never needs the server half.
  const { WebSocketServer: WebSocketServerClass } = await import('ws');
  const server = new TunnelServer(options, WebSocketServerClass);
  await server.listen();
  return server;
}
