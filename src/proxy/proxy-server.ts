import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { ErrorCodes, TunnelError, usageError } from '../errors.js';
import { parseBindAddress } from '../config/port-spec.js';
import { parseSandboxName } from '../config/sandbox-name.js';
import { formatHostPort } from '../config/host-port.js';
import { isLoopbackHost, resolveProxyTarget } from '../config/proxy-url.js';
import { bindMapping, closeListeners, type BoundListener } from '../client/listen.js';
import { resolveOptions, type TunnelOptions } from '../client/options.js';
import { FrontEnd } from '../client/front-end.js';
import { ConnectionSet, type Route, type TunnelEvents, type TunnelStats, type TunnelWarning } from '../client/connections.js';
import { destinationFor } from './destination.js';
import { readHandshake, type Handshake } from './handshake.js';
import { httpReply } from './http-proxy.js';
import { HttpExchange } from './http-exchange.js';
import { httpStatusFor, socks5CodeFor } from './replies.js';
import { cachedRoutes, type ResolveRoute, type SandboxRoute } from './routes.js';
import { Socks5 } from './socks.js';

export interface ProxyOptions extends Omit<TunnelOptions, 'sandbox' | 'ports' | 'check' | 'onStartupRetry'> {
  /** Local port of the proxy; 0 picks a free one. */
  port: number;
  /** The sandbox `localhost`, `127.0.0.1` and `::1` stand for; without it they are refused. */
  sandbox?: string;
  /** Time a client has to complete its SOCKS or HTTP handshake. Default 10000. */
  handshakeTimeoutMs?: number;
}

export interface ProxyAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface ProxyHandle extends EventEmitter<TunnelEvents> {
  /** The sandbox loopback names stand for, if any. */
  readonly sandbox: string | undefined;
  readonly addresses: readonly ProxyAddress[];
  readonly warnings: readonly TunnelWarning[];
  readonly stats: TunnelStats;
  /** Bytes each way so far, the tunnels still open included. */
  traffic(): { bytesSent: number; bytesReceived: number };
  /** Stops listening and closes every tunnel with a 1001 close; safe to call more than once. */
  close(): Promise<void>;
}

/** Failures that mean a cached route no longer names a live sandbox. */
const STALE = new Set<string>([ErrorCodes.SANDBOX_NOT_FOUND, ErrorCodes.SANDBOX_NOT_RUNNING]);

/** Clients in their handshake at once; beyond this new ones are dropped (a flood, not a user). */
const MAX_HANDSHAKES = 1024;
const MAX_WARNED = 1000;

class ProxyServer extends FrontEnd implements ProxyHandle {
  readonly addresses: ProxyAddress[] = [];
  private readonly bound: BoundListener[] = [];
  private readonly warned = new Set<string>();
  /** Clients still in their handshake (closed with the handle). */
  private readonly handshaking = new Set<Socket>();
  private closing: Promise<void> | undefined;
  /** Routes from a resolver that does not cache them, so close() can let go of their warm connections. */
  private readonly routes = new Set<SandboxRoute>();

  constructor(
    readonly sandbox: string | undefined,
    private readonly resolve: ResolveRoute,
    private readonly handshakeTimeoutMs: number,
    settings: ConstructorParameters<typeof ConnectionSet>[0],
  ) {
    super(settings);
  }

  async listen(address: string | undefined, port: number): Promise<void> {
    const result = await bindMapping({ address, localPort: port, remotePort: 0 }, (socket) => this.onConnection(socket));
    this.bound.push(...result.listeners);
    for (const l of result.listeners) {
      this.addresses.push({ address: l.address, family: l.family, port: l.port });
      if (!isLoopbackHost(l.address)) {
        this.connections.warn(
          'TL_WARN_EXPOSED',
          `The proxy listens on ${formatHostPort(l.address, l.port)}, beyond this machine: anyone who can reach it can open any port of any sandbox your credentials reach`,
        );
      }
    }
    for (const s of result.skipped) {
      this.connections.warn('TL_WARN_BIND', `Could not also listen on ${formatHostPort(s.address, result.listeners[0]?.port ?? port)} (${s.error.code ?? s.error.message})`);
    }
    this.connections.start();
  }

  /** One warning line per distinct key: a browser retrying a refused host must not flood stderr. */
  private warnOnce(key: string, code: string, message: string): void {
    if (this.warned.has(key) || this.warned.size >= MAX_WARNED) return;
    this.warned.add(key);
    this.connections.warn(code, message);
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => {});
    if (this.closing || this.handshaking.size >= MAX_HANDSHAKES) {
      socket.destroy();
      return;
    }
    this.handshaking.add(socket);
    readHandshake(socket, this.handshakeTimeoutMs).then((result) => {
      this.handshaking.delete(socket);
      if (this.closing) return void socket.destroy();
      const peer = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
      if (result.kind === 'gone') return void socket.destroy();
      if (result.kind === 'timeout') {
        this.warnOnce('timeout', 'TL_WARN_PROXY_HANDSHAKE', `A proxy client (${peer}) did not complete its handshake in ${this.handshakeTimeoutMs} ms; closed`);
        // An HTTP client is told why; a SOCKS one has no reply for it (nor has a slowloris a use for one).
        return result.protocol === 'http' ? answerAndClose(socket, httpReply(408, 'The proxy request took too long to arrive')) : void socket.destroy();
      }
      if (result.kind === 'error') {
        this.warnOnce(`bad:${result.message}`, 'TL_WARN_PROXY_HANDSHAKE', `Refused a proxy client (${peer}): ${result.message}`);
        return answerAndClose(socket, result.reply);
      }
      this.route(socket, result.handshake);
    }, () => socket.destroy());
  }

  private route(socket: Socket, h: Handshake): void {
    const destination = destinationFor(h.host, this.sandbox);
    if ('refused' in destination) {
      // A SOCKS host name is any bytes: quoted unless plain, so it cannot write escapes to a terminal.
      const shown = /^[\x21-\x7e]{1,255}$/.test(h.host) ? formatHostPort(h.host, h.port) : `${JSON.stringify(h.host.slice(0, 100))} port ${h.port}`;
      this.warnOnce(`refused:${h.host}`, 'TL_WARN_PROXY_REFUSED', `Refused ${shown} through the proxy: ${destination.refused}`);
      return answerAndClose(socket, h.reply(Socks5.NOT_ALLOWED, 403, `tl-tunnel refused ${shown}: ${destination.refused}`));
    }
    const sandbox = destination.sandbox;
    const route: Route = {
      sandbox,
      remotePort: h.port,
      connect: async (opts) => {
        const route = await this.resolve(sandbox);
        // A caching resolver lets go of its routes itself; anything else is closed with the proxy.
        if (!this.resolve.closeAll) this.routes.add(route);
        try {
          return await route.connect(h.port, opts);
        } catch (err) {
          // Gone (missing, terminated): the name may soon belong to a new sandbox; ask again next time.
          if (err instanceof TunnelError && STALE.has(err.code)) this.resolve.forget?.(sandbox);
          throw err;
        }
      },
      onOpen: (s) => {
        if (h.success.length > 0) s.write(h.success);
      },
      onFail: (s, error) => {
        answerAndClose(s, h.reply(socks5CodeFor(error), httpStatusFor(error), error.message));
        return true;
      },
      ...(h.http ? { filter: new HttpExchange(h.http, () => this.devToolsHint(sandbox, h.port)) } : {}),
    };
    // Bytes read past the handshake go back in front, so the relay sends them first.
    if (h.replay.length > 0) socket.unshift(h.replay);
    this.connections.accept(socket, route);
  }

  private devToolsHint(sandbox: string, port: number): void {
    this.warnOnce(
      `devtools:${sandbox}:${port}`,
      'TL_WARN_DEVTOOLS_HOST',
      `Chrome DevTools on ${sandbox}:${port} refuses a Host that is not an IP address or localhost: through the proxy, use http://${sandbox}.localhost:${port}/`,
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = closeListeners(this.bound);
      for (const s of this.handshaking) s.destroy();
      this.resolve.closeAll?.();
      for (const route of this.routes) route.close?.();
      await Promise.all([stopped, this.connections.close()]);
    })();
    return this.closing;
  }
}

/**
 * Sends a final reply and closes gracefully: unread input is drained (a close with unread bytes
 * would reset the connection and could discard the reply), and a client that never closes is cut.
 */
function answerAndClose(socket: Socket, reply: Buffer): void {
  socket.removeAllListeners('data');
  socket.on('data', () => {});
  socket.on('end', () => socket.destroy());
  socket.resume();
  if (reply.length > 0) socket.end(reply);
  else socket.end();
  setTimeout(() => socket.destroy(), 2000).unref();
}

/**
 * Opens one local port that speaks SOCKS5, SOCKS4/4a and HTTP proxying (CONNECT and plain
 * requests) and routes each connection to <sandbox>:<port> through its own tunnel.
 */
export async function openProxy(options: ProxyOptions, resolveRoute?: ResolveRoute): Promise<ProxyHandle> {
  if (options === null || typeof options !== 'object') throw usageError('openProxy expects an options object: { port, credentials, ... }');
  const o = options as unknown as Record<string, unknown>;
  if (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw usageError(`Invalid option port: expected a port number from 0 to 65535 (0 picks a free one), got ${String(o.port)}`);
  }
  const timeout = options.handshakeTimeoutMs ?? 10_000;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 1) throw usageError('Invalid option handshakeTimeoutMs: expected a number of milliseconds from 1');
  const sandbox = options.sandbox === undefined ? undefined : parseSandboxName(options.sandbox);
  const address = options.address === undefined ? undefined : parseBindAddress(options.address, 'option address');
  const settings = resolveOptions({ ...options, sandbox: sandbox ?? 'proxy', ports: [] });
  // Fails now, not at the first connection, on a bad proxy URL (the host name does not matter).
  resolveProxyTarget(sandbox ?? 'proxy', options.proxyUrl, options.allowInsecure);
  if (options.fallbackProxyUrl !== undefined) resolveProxyTarget(sandbox ?? 'proxy', options.fallbackProxyUrl, options.allowInsecure);
  const { port: _port, sandbox: _sandbox, handshakeTimeoutMs: _t, address: _a, ...tunnelOptions } = options;
  const server = new ProxyServer(sandbox, resolveRoute ?? cachedRoutes(tunnelOptions), timeout, settings);
  await server.listen(address, options.port);
  return server;
}
