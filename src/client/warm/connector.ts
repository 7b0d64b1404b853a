import { EventEmitter } from 'node:events';
import type { Agent } from 'node:http';
import net, { type Socket } from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import type WebSocket from 'ws';
import { WarmPool, type Taken, type WarmSettings } from './pool.js';

export type { WarmSettings } from './pool.js';

export interface ConnectorTarget {
  host: string;
  port: number;
  secure: boolean;
}

/** How one upgrade attempt gets its socket: hand this to ws as `createConnection`. */
export interface Lease {
  warm: boolean;
  /** A warm socket that was already open (one still opening is fresh, not possibly forgotten). */
  ready?: boolean;
  createConnection: (options: object, callback: (err: Error | null, socket?: Socket) => void) => Socket | undefined;
}

/** An HTTP CONNECT agent we can ask for a tunnelled socket ahead of time (https-proxy-agent 7). */
interface ConnectAgent extends Agent {
  proxy: URL;
  connect(req: EventEmitter, options: Record<string, unknown>): Promise<Socket>;
}

function isConnectAgent(agent: Agent | undefined): agent is ConnectAgent {
  const a = agent as Partial<ConnectAgent> | undefined;
  return typeof a?.connect === 'function' && a.proxy instanceof URL;
}

const openedWarm = new WeakSet<WebSocket>();
const WARM_ANSWER_MS = { min: 500, max: 1000 };

/** Whether this tunnel WebSocket's upgrade went out on a warm socket. */
export function usedWarmSocket(ws: WebSocket): boolean {
  return openedWarm.has(ws);
}

export function markWarm(ws: WebSocket): void {
  openedWarm.add(ws);
}

/** Resolves with `socket` once `event` says it can carry the upgrade; rejects if it closes first. */
function whenReady(socket: Socket, event: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const fail = (err?: Error): void => {
      socket.off(event, ok);
      socket.destroy();
      reject(err instanceof Error ? err : new Error('closed while opening'));
    };
    const ok = (): void => {
      socket.off('error', fail);
      socket.off('close', fail);
      resolve(socket);
    };
    socket.once(event, ok);
    socket.once('error', fail);
    socket.once('close', fail);
  });
}

/**
 * The sockets upgrades go out on, for one proxy base: straight to the proxy (TCP, or TLS with one
 * secure context and session cache, so every tunnel resumes the session) or, with an HTTP CONNECT
 * agent, through it; and the warm pool in front of either.
 */
export class Connector {
  private session: Buffer | undefined;
  private readonly secureContext: SecureContext | undefined;
  private readonly pool: WarmPool | undefined;
  /** False with an agent we cannot drive ourselves: ws then uses that agent, unpooled. */
  private readonly own: boolean;

  constructor(
    private readonly target: ConnectorTarget,
    private readonly agent: Agent | undefined,
    warm: WarmSettings | undefined,
  ) {
    this.own = agent === undefined || isConnectAgent(agent);
    // One secure context: tls.connect would otherwise build one (root store included) per upgrade.
    this.secureContext = target.secure && this.own ? tls.createSecureContext() : undefined;
    if (this.own && warm !== undefined && warm.max > 0) this.pool = new WarmPool(warm, () => this.openAhead());
  }

  /** Starts warming now (before the startup check, so its upgrade finds a connection on the way). */
  start(): void {
    this.pool?.start();
  }

  /**
   * The socket source for one upgrade attempt; undefined means "let ws use the agent". A warm
   * socket only when `allowWarm` (a retry after a dead warm socket connects afresh).
   */
  lease(allowWarm: boolean): Lease | undefined {
    const taken = allowWarm ? this.pool?.take() : undefined;
    if (taken !== undefined) return { warm: true, ready: taken.socket !== undefined, createConnection: handOver(taken) };
    if (!this.own || this.agent !== undefined) return undefined;
    return { warm: false, createConnection: () => this.openDirect() };
  }

  /**
   * How long an upgrade sent on a warm socket may go unanswered before the socket is taken for
   * one a middlebox silently forgot: a few times what opening a socket took (a round trip or two),
   * within bounds, so a slow proxy is not mistaken for a dead flow and a dead flow costs at most ~1 s.
   */
  warmAnswerMs(): number {
    const open = this.pool?.lastOpenMs;
    return open === undefined ? WARM_ANSWER_MS.max : Math.min(WARM_ANSWER_MS.max, Math.max(WARM_ANSWER_MS.min, 4 * open));
  }

  /** A warm socket carried its upgrade. */
  used(): void {
    this.pool?.used();
  }

  close(): void {
    this.pool?.close();
  }

  private tlsOptions(): tls.ConnectionOptions {
    return {
      servername: net.isIP(this.target.host) ? '' : this.target.host,
      secureContext: this.secureContext,
      session: this.session,
    };
  }

  private remember(socket: tls.TLSSocket): void {
    socket.on('session', (session: Buffer) => (this.session = session));
    // A handshake that failed may have failed on a stale session: start the next one afresh.
    socket.once('error', () => (this.session = undefined));
  }

  private openDirect(): Socket {
    const { host, port } = this.target;
    if (!this.target.secure) return net.connect({ host, port, noDelay: true });
    const socket = tls.connect({ host, port, ...this.tlsOptions() });
    // Before the upgrade, not after (ws's own setNoDelay): on a warm socket the upgrade request
    // otherwise met Nagle and a delayed ACK, 40 ms on every other connection.
    socket.setNoDelay(true);
    this.remember(socket);
    return socket;
  }

  private async openAhead(): Promise<Socket> {
    if (this.agent === undefined) {
      const socket = this.openDirect();
      return whenReady(socket, this.target.secure ? 'secureConnect' : 'connect');
    }
    // Through the HTTP proxy: its CONNECT (and our TLS inside it) now, the upgrade later.
    const req = new EventEmitter();
    let status = 0;
    req.on('proxyConnect', (res: { statusCode: number }) => (status = res.statusCode));
    const agent = this.agent as ConnectAgent;
    const socket = await agent.connect(req, { host: this.target.host, port: this.target.port, secureEndpoint: this.target.secure, ...(this.target.secure ? this.tlsOptions() : {}) });
    if (status !== 200) {
      socket.destroy();
      throw new Error(`HTTP proxy answered ${status} to CONNECT`);
    }
    socket.setNoDelay(true);
    if (!this.target.secure) return socket;
    this.remember(socket as tls.TLSSocket);
    return whenReady(socket, 'secureConnect');
  }
}

function handOver(taken: Taken): Lease['createConnection'] {
  return (_options, callback) => {
    if (taken.socket) return taken.socket;
    taken.opening.then(
      (socket) => callback(null, socket),
      (err: Error) => callback(err),
    );
    return undefined;
  };
}
