// One plain-HTTP request through the -D proxy, kept to its own tunnel. The proxy reads the first
// request head, opens a tunnel to the sandbox that request's URL names, and this filter then lets
// exactly that request's body cross (found by its framing: Content-Length or chunked), and nothing
// after it: a keep-alive client's next request, which may be meant for another sandbox and carry
// its cookies, never reaches this one's service, whatever that service does with `Connection:
// close`. The answer's head is rewritten to `Connection: close`, so the client sends its next
// request on a new connection, where it is routed by its own URL.
import { ErrorCodes, TunnelError } from '../errors.js';
import type { StreamFilter } from '../relay/relay-types.js';

/** How the request's body ends (RFC 9112 section 6). */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

export interface HttpExchangeInit {
  /** Bytes of the rewritten request head, which cross first. */
  headBytes: number;
  body: BodyFraming;
  /** The request asked for a protocol upgrade (WebSocket): after a 101 the connection is raw. */
  upgrade: boolean;
}

/** A response head larger than this is passed on unchanged rather than buffered further. */
const MAX_RESPONSE_HEAD = 64 * 1024;
/** A chunk-size line or trailer section longer than this is not HTTP. */
const MAX_CHUNK_LINE = 1024;
const MAX_TRAILERS = 16 * 1024;
/** What Chrome DevTools answers a Host that is neither an IP address nor localhost. */
const DEVTOOLS_HOST_REFUSAL = 'Host header is specified and is not an IP address or localhost';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection']);
const CR = 0x0d;
const LF = 0x0a;

type ChunkState = 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'done';

function malformed(what: string): TunnelError {
  return new TunnelError(ErrorCodes.PROTOCOL, `The proxy client sent ${what}; the connection was cut`);
}

export class HttpExchange implements StreamFilter {
  private headLeft: number;
  private bodyLeft: number;
  private chunk: ChunkState = 'size';
  private line = '';
  private sawCR = false;
  private trailerBytes = 0;
  private requestDone: boolean;
  /** undefined until the answer's final head is read; then whether it was a 101. */
  private upgraded: boolean | undefined;
  private responseHead: Buffer | undefined = Buffer.alloc(0);
  private bodySeen = false;

  constructor(
    private readonly init: HttpExchangeInit,
    /** Called when the answer is Chrome DevTools refusing the Host (once per exchange). */
    private readonly onDevToolsHost?: () => void,
  ) {
    this.headLeft = init.headBytes;
    this.bodyLeft = init.body.kind === 'length' ? init.body.length : 0;
    this.requestDone = init.body.kind === 'none' || (init.body.kind === 'length' && init.body.length === 0);
  }

  readonly up = (chunk: Buffer): Buffer => {
    let at = 0;
    if (this.headLeft > 0) {
      at = Math.min(this.headLeft, chunk.length);
      this.headLeft -= at;
    }
    if (!this.requestDone && at < chunk.length) at = this.body(chunk, at);
    if (at === chunk.length) return chunk;
    // Past the end of this request.
    if (this.init.upgrade && this.upgraded === true) return chunk;
    if (this.init.upgrade && this.upgraded === undefined) throw malformed('data before its upgrade was answered');
    // A pipelined or keep-alive request: never into this tunnel. The answer says `Connection:
    // close`, and a client retries unanswered requests on a new connection (RFC 9112 9.3.2).
    return chunk.subarray(0, at);
  };

  readonly down = (chunk: Buffer): Buffer => {
    if (this.responseHead === undefined) {
      this.noticeDevTools(chunk);
      return chunk;
    }
    let pending = this.responseHead.length === 0 ? chunk : Buffer.concat([this.responseHead, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) {
        if (pending.length > MAX_RESPONSE_HEAD) break;
        this.responseHead = pending;
        return Buffer.concat(out);
      }
      const head = pending.subarray(0, end + 4);
      pending = pending.subarray(end + 4);
      const status = Number(/^HTTP\/1\.[01] ([0-9]{3})/.exec(head.toString('latin1', 0, 16))?.[1] ?? 0);
      if (status >= 100 && status < 200 && status !== 101) {
        out.push(head); // Interim answers (100 Continue) have no body; the final head follows.
        continue;
      }
      this.upgraded = status === 101;
      out.push(status === 101 ? head : closingHead(head));
      break;
    }
    this.responseHead = undefined;
    this.noticeDevTools(pending);
    out.push(pending);
    return Buffer.concat(out);
  };

  private noticeDevTools(chunk: Buffer): void {
    if (this.bodySeen || chunk.length === 0) return;
    this.bodySeen = true;
    if (chunk.includes(DEVTOOLS_HOST_REFUSAL)) this.onDevToolsHost?.();
  }

  /** Consumes body bytes from `at`; returns where the body ends in this chunk (or its length). */
  private body(chunk: Buffer, at: number): number {
    if (this.init.body.kind === 'length') {
      const take = Math.min(this.bodyLeft, chunk.length - at);
      this.bodyLeft -= take;
      if (this.bodyLeft === 0) this.requestDone = true;
      return at + take;
    }
    let i = at;
    while (i < chunk.length && this.chunk !== 'done') {
      if (this.chunk === 'data') {
        const take = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= take;
        i += take;
        if (this.bodyLeft === 0) this.chunk = 'data-cr';
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.chunk === 'data-cr' || this.chunk === 'data-lf') {
        if (byte !== (this.chunk === 'data-cr' ? CR : LF)) throw malformed('a chunk without its CRLF');
        this.chunk = this.chunk === 'data-cr' ? 'data-lf' : 'size';
        continue;
      }
      if (this.sawCR !== (byte === LF)) throw malformed('a bare CR or LF in a chunked body');
      if (byte === CR) {
        this.sawCR = true;
        continue;
      }
      if (byte !== LF) {
        this.line += String.fromCharCode(byte);
        if (this.chunk === 'size' && this.line.length > MAX_CHUNK_LINE) throw malformed('an overlong chunk-size line');
        if (this.chunk === 'trailer' && (this.trailerBytes += 1) > MAX_TRAILERS) throw malformed('overlong trailers');
        continue;
      }
      this.sawCR = false;
      this.endLine();
    }
    if (this.chunk === 'done') this.requestDone = true;
    return i;
  }

  private endLine(): void {
    const line = this.line;
    this.line = '';
    if (this.chunk === 'trailer') {
      if (line === '') this.chunk = 'done';
      return;
    }
    const size = /^([0-9A-Fa-f]{1,15})(?:[ \t]*;[\t\x20-\x7e]*)?$/.exec(line)?.[1];
    if (size === undefined) throw malformed('a malformed chunk size');
    this.bodyLeft = parseInt(size, 16);
    this.chunk = this.bodyLeft === 0 ? 'trailer' : 'data';
  }
}

/** The answer's head with `Connection: close` in place of its own connection headers. */
function closingHead(head: Buffer): Buffer {
  const lines = head.toString('latin1').slice(0, -4).split('\r\n');
  const named = new Set(
    lines
      .filter((l) => /^connection:/i.test(l))
      .flatMap((l) => l.slice(l.indexOf(':') + 1).split(','))
      .map((t) => t.trim().toLowerCase()),
  );
  const kept = lines.filter((l, i) => {
    if (i === 0) return true;
    const name = l.slice(0, Math.max(0, l.indexOf(':'))).trim().toLowerCase();
    return !HOP_BY_HOP.has(name) && !named.has(name);
  });
  return Buffer.from(`${[...kept, 'Connection: close'].join('\r\n')}\r\n\r\n`, 'latin1');
}
