// Reads one proxy client's handshake (SOCKS5, SOCKS4/4a or HTTP, told apart by the first byte)
// and says where the connection goes and how to answer it; never throws on bad input.
import type { Socket } from 'node:net';
import { CONNECT_ESTABLISHED, httpReply, parseHttpProxyRequest } from './http-proxy.js';
import type { BodyFraming, HttpExchangeInit } from './http-exchange.js';
import { parseSocks4Request, parseSocks5Greeting, parseSocks5Request, socks4Reply, socks5Reply, Socks5, type Parse, type Target } from './socks.js';

export type Protocol = 'socks5' | 'socks4' | 'http';

export interface Handshake extends Target {
  protocol: Protocol;
  /** Written when the tunnel is open (SOCKS success, "200 Connection established"); empty when none. */
  success: Buffer;
  /** Bytes to put in front of the client's stream (the rewritten HTTP head, early data). */
  replay: Buffer;
  /** Answer for a refusal or failure: a protocol error reply. */
  reply: (socks5Code: number, httpStatus: number, message: string) => Buffer;
  /** A plain-HTTP request (not CONNECT): what keeps it to its own tunnel. */
  http?: HttpExchangeInit;
}

export type HandshakeResult = { kind: 'ok'; handshake: Handshake } | { kind: 'error'; reply: Buffer; message: string };

const SOCKS5_SUCCESS = socks5Reply(Socks5.OK);

function replyFor(protocol: Protocol): Handshake['reply'] {
  return (code, status, message) => (protocol === 'socks5' ? socks5Reply(code) : protocol === 'socks4' ? socks4Reply(false) : httpReply(status, message));
}

/** What the first byte says the client speaks. */
export function protocolOf(first: number): Protocol | undefined {
  if (first === 0x05) return 'socks5';
  if (first === 0x04) return 'socks4';
  // Every HTTP method starts with an upper-case letter.
  if (first >= 0x41 && first <= 0x5a) return 'http';
  return undefined;
}

/**
 * Steps a handshake over the bytes received so far. `state.stage` tracks the SOCKS5 method
 * negotiation; the caller writes `write` (if any) and calls again when more bytes arrive.
 */
export function stepHandshake(buf: Buffer, state: { greeted: boolean }): { kind: 'more'; consumed: number; write?: Buffer } | HandshakeResult {
  const protocol = buf.length > 0 ? protocolOf(buf[0] as number) : undefined;
  if (buf.length === 0) return { kind: 'more', consumed: 0 };
  if (protocol === undefined) {
    const tls = buf[0] === 0x16;
    return { kind: 'error', reply: Buffer.alloc(0), message: tls ? 'it started TLS; set the proxy as http:// or socks5://, not https://' : 'it speaks neither SOCKS nor HTTP' };
  }
  if (protocol === 'socks5' && !state.greeted) {
    const greeting = parseSocks5Greeting(buf);
    if (greeting.kind !== 'ok') return greeting.kind === 'more' ? { kind: 'more', consumed: 0 } : greeting;
    state.greeted = true;
    return { kind: 'more', consumed: greeting.consumed, write: greeting.reply };
  }
  const parsed: Parse<Target & { head?: Buffer; body?: BodyFraming; upgrade?: boolean; mode?: string }> =
    protocol === 'socks5' ? parseSocks5Request(buf) : protocol === 'socks4' ? parseSocks4Request(buf) : parseHttpProxyRequest(buf);
  if (parsed.kind === 'more') return { kind: 'more', consumed: 0 };
  if (parsed.kind === 'error') return parsed;
  const rest = buf.subarray(parsed.consumed);
  const forward = parsed.mode === 'forward';
  const success = protocol === 'socks5' ? SOCKS5_SUCCESS : protocol === 'socks4' ? socks4Reply(true) : forward ? Buffer.alloc(0) : CONNECT_ESTABLISHED;
  // Everything read goes back in front of the stream; the exchange filter lets only this request cross.
  const head = parsed.head ?? Buffer.alloc(0);
  const replay = forward ? Buffer.concat([head, rest]) : Buffer.from(rest);
  const http = forward ? { headBytes: head.length, body: parsed.body ?? { kind: 'none' as const }, upgrade: parsed.upgrade === true } : undefined;
  return { kind: 'ok', handshake: { protocol, host: parsed.host, port: parsed.port, success, replay, reply: replyFor(protocol), ...(http ? { http } : {}) } };
}

/**
 * Reads the handshake from a paused socket. Resolves with the handshake (socket paused again,
 * nothing unread lost) or an error already answered; the deadline guards against slowloris.
 */
export type ReadResult = HandshakeResult | { kind: 'timeout'; protocol: Protocol | undefined } | { kind: 'gone' };

export function readHandshake(socket: Socket, timeoutMs: number): Promise<ReadResult> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const state = { greeted: false };
    let protocol: Protocol | undefined;
    const finish = (result: ReadResult): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.pause();
      resolve(result);
    };
    const onGone = (): void => finish({ kind: 'gone' });
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      protocol ??= protocolOf(buf[0] as number);
      for (;;) {
        const step = stepHandshake(buf, state);
        if (step.kind !== 'more') return finish(step);
        buf = buf.subarray(step.consumed);
        if (step.write) socket.write(step.write);
        if (step.consumed === 0 || buf.length === 0) return;
      }
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', protocol }), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.on('end', onGone);
    socket.on('close', onGone);
    socket.resume();
  });
}
