// SOCKS5 (RFC 1928: no authentication, CONNECT) and SOCKS4/4a, as pure parsers over the bytes
// received so far: each answers "need more", a result, or a reply to send before closing.

export type Parse<T> = { kind: 'more' } | { kind: 'error'; reply: Buffer; message: string } | ({ kind: 'ok'; consumed: number } & T);

export interface Target {
  host: string;
  port: number;
}

/** SOCKS5 reply codes (RFC 1928 section 6). */
export const Socks5 = {
  OK: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_NOT_SUPPORTED: 0x08,
} as const;

const NO_AUTH = 0x00;
const NO_ACCEPTABLE_METHOD = 0xff;
const CONNECT = 0x01;

/** A SOCKS5 reply with an all-zero IPv4 bound address (clients do not use it for CONNECT). */
export function socks5Reply(code: number): Buffer {
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

/** SOCKS4 reply: 0x5a granted, 0x5b rejected or failed. */
export function socks4Reply(granted: boolean): Buffer {
  return Buffer.from([0x00, granted ? 0x5a : 0x5b, 0, 0, 0, 0, 0, 0]);
}

/** The method-selection message: VER NMETHODS METHODS... Answers the chosen method. */
export function parseSocks5Greeting(buf: Buffer): Parse<{ reply: Buffer }> {
  if (buf.length < 2) return { kind: 'more' };
  if (buf[0] !== 0x05) return { kind: 'error', reply: Buffer.from([0x05, NO_ACCEPTABLE_METHOD]), message: 'not a SOCKS5 greeting' };
  const n = buf[1] as number;
  if (n === 0) return { kind: 'error', reply: Buffer.from([0x05, NO_ACCEPTABLE_METHOD]), message: 'SOCKS5 greeting offers no method' };
  if (buf.length < 2 + n) return { kind: 'more' };
  if (!buf.subarray(2, 2 + n).includes(NO_AUTH)) {
    return { kind: 'error', reply: Buffer.from([0x05, NO_ACCEPTABLE_METHOD]), message: 'the SOCKS5 client requires authentication; this proxy offers only "no authentication" (it listens on loopback)' };
  }
  return { kind: 'ok', consumed: 2 + n, reply: Buffer.from([0x05, NO_AUTH]) };
}

/** The request: VER CMD RSV ATYP DST.ADDR DST.PORT. Only CONNECT is served. */
export function parseSocks5Request(buf: Buffer): Parse<Target> {
  if (buf.length < 5) return { kind: 'more' };
  const fail = (code: number, message: string): Parse<Target> => ({ kind: 'error', reply: socks5Reply(code), message });
  if (buf[0] !== 0x05) return fail(Socks5.GENERAL_FAILURE, 'bad SOCKS5 request version');
  const atyp = buf[3];
  let host: string;
  let end: number;
  if (atyp === 0x01) {
    end = 4 + 4;
    if (buf.length < end + 2) return { kind: 'more' };
    host = [...buf.subarray(4, 8)].join('.');
  } else if (atyp === 0x04) {
    end = 4 + 16;
    if (buf.length < end + 2) return { kind: 'more' };
    const groups: string[] = [];
    for (let i = 4; i < end; i += 2) groups.push(buf.readUInt16BE(i).toString(16));
    host = compressIPv6(groups);
  } else if (atyp === 0x03) {
    const len = buf[4] as number;
    end = 5 + len;
    if (buf.length < end + 2) return { kind: 'more' };
    if (len === 0) return fail(Socks5.ADDRESS_NOT_SUPPORTED, 'empty SOCKS5 domain name');
    host = buf.subarray(5, end).toString('latin1');
  } else {
    return fail(Socks5.ADDRESS_NOT_SUPPORTED, `unknown SOCKS5 address type ${String(atyp)}`);
  }
  // Checked after the whole request is in, so the reply does not race the client's last bytes.
  if (buf[1] !== CONNECT) return fail(Socks5.COMMAND_NOT_SUPPORTED, `SOCKS5 command ${String(buf[1])} is not supported (only CONNECT)`);
  const port = buf.readUInt16BE(end);
  if (port === 0) return fail(Socks5.NOT_ALLOWED, 'port 0');
  return { kind: 'ok', consumed: end + 2, host, port };
}

const MAX_SOCKS4_FIELD = 255;

function cString(buf: Buffer, from: number): { value: string; next: number } | 'more' | 'long' {
  const nul = buf.indexOf(0, from);
  if (nul < 0) return buf.length - from > MAX_SOCKS4_FIELD ? 'long' : 'more';
  if (nul - from > MAX_SOCKS4_FIELD) return 'long';
  return { value: buf.subarray(from, nul).toString('latin1'), next: nul + 1 };
}

/** SOCKS4 / 4a CONNECT: VER=4 CMD DSTPORT DSTIP USERID\0 [HOST\0 when DSTIP is 0.0.0.x]. */
export function parseSocks4Request(buf: Buffer): Parse<Target> {
  if (buf.length < 9) {
    if (buf.length >= 1 && buf[0] !== 0x04) return { kind: 'error', reply: socks4Reply(false), message: 'not a SOCKS4 request' };
    return { kind: 'more' };
  }
  const fail = (message: string): Parse<Target> => ({ kind: 'error', reply: socks4Reply(false), message });
  if (buf[0] !== 0x04) return fail('not a SOCKS4 request');
  const user = cString(buf, 8);
  if (user === 'more') return { kind: 'more' };
  if (user === 'long') return fail('SOCKS4 user id too long');
  const port = buf.readUInt16BE(2);
  const ip = [...buf.subarray(4, 8)];
  let host = ip.join('.');
  let consumed = user.next;
  // 4a: an address 0.0.0.x with x != 0 means "the host name follows".
  if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0) {
    const name = cString(buf, user.next);
    if (name === 'more') return { kind: 'more' };
    if (name === 'long') return fail('SOCKS4a host name too long');
    if (name.value === '') return fail('empty SOCKS4a host name');
    host = name.value;
    consumed = name.next;
  }
  if (buf[1] !== CONNECT) return fail(`SOCKS4 command ${String(buf[1])} is not supported (only CONNECT)`);
  if (port === 0) return fail('port 0');
  return { kind: 'ok', consumed, host, port };
}

/** RFC 5952 text for eight 16-bit groups (longest run of two or more zero groups becomes ::). */
function compressIPv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j += 1;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
