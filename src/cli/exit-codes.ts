import { ErrorCodes, type ErrorCode } from '../index.js';

/** The one table from error codes to process exit codes (documented in the README and docs/options.md). */
export const EXIT_CODES: Record<ErrorCode, number> = {
  [ErrorCodes.USAGE]: 2,
  [ErrorCodes.NO_CREDENTIALS]: 2,
  [ErrorCodes.BAD_PORT]: 2,
  [ErrorCodes.AUTH]: 3,
  [ErrorCodes.SANDBOX_NOT_FOUND]: 4,
  [ErrorCodes.PORT_CLOSED]: 4,
  [ErrorCodes.SANDBOX_NOT_RUNNING]: 4,
  [ErrorCodes.LOOKUP]: 1,
  [ErrorCodes.LISTEN]: 5,
  [ErrorCodes.UNREACHABLE]: 6,
  [ErrorCodes.TLS]: 6,
  [ErrorCodes.TIMEOUT]: 6,
  [ErrorCodes.HTTP_PROXY]: 6,
  [ErrorCodes.PROXY_STATUS]: 1,
  [ErrorCodes.PROTOCOL]: 1,
  [ErrorCodes.KEEPALIVE]: 1,
  [ErrorCodes.REMOTE_CLOSED]: 1,
  [ErrorCodes.LOCAL_RESET]: 1,
  [ErrorCodes.FD_LIMIT]: 1,
  [ErrorCodes.INTERRUPTED]: 1,
  [ErrorCodes.CONTROL]: 1,
  [ErrorCodes.NO_SUCH_TUNNEL]: 7,
  [ErrorCodes.INTERNAL]: 1,
};

/** Exit code after a second Ctrl-C (128 + SIGINT), as shells expect. */
export const EXIT_INTERRUPTED = 130;

export function exitCodeFor(code: string | undefined): number {
  return (code !== undefined && (EXIT_CODES as Record<string, number>)[code]) || 1;
}
