import { ErrorCodes, type TunnelError } from '../errors.js';
import { Socks5 } from './socks.js';

/** How a failed tunnel is answered in each protocol (docs/proxy-mode.md has the table). */
export function socks5CodeFor(error: TunnelError): number {
  switch (error.code) {
    case ErrorCodes.SANDBOX_NOT_FOUND:
      return Socks5.HOST_UNREACHABLE;
    case ErrorCodes.PORT_CLOSED:
      return Socks5.REFUSED;
    case ErrorCodes.AUTH:
    case ErrorCodes.BAD_PORT:
      return Socks5.NOT_ALLOWED;
    case ErrorCodes.TIMEOUT:
      return Socks5.TTL_EXPIRED;
    case ErrorCodes.UNREACHABLE:
      return Socks5.NETWORK_UNREACHABLE;
    default:
      return Socks5.GENERAL_FAILURE;
  }
}

export function httpStatusFor(error: TunnelError): number {
  switch (error.code) {
    case ErrorCodes.SANDBOX_NOT_FOUND:
      return 404;
    case ErrorCodes.TIMEOUT:
      return 504;
    default:
      // Port closed, bad credentials, the sandbox proxy unreachable or misbehaving: the gateway failed.
      return 502;
  }
}
