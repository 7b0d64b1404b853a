import type WebSocket from 'ws';
import { ErrorCodes, TunnelError } from '../errors.js';
import type { RelayResult } from '../relay/relay.js';

const OPEN = 1;

/**
 * ws answers every ping itself and, when a peer sends pings faster than the pongs can be written
 * (more than `maxPendingAutoPongs` waiting), cuts the connection without a word: it then looks
 * like a dropped connection (1006). ws still emits that last ping after cutting, while the socket is
 * no longer open: seeing one is how we know. Returns the result with the right error.
 */
export function watchPingFlood(ws: WebSocket): (result: RelayResult) => RelayResult {
  let cut = false;
  ws.on('ping', () => {
    if (ws.readyState !== OPEN) cut = true;
  });
  return (result) => {
    if (!cut || result.error?.code !== ErrorCodes.REMOTE_CLOSED) return result;
    const error = new TunnelError(ErrorCodes.PROTOCOL, 'The peer flooded the tunnel with pings faster than they could be answered; the tunnel was cut');
    return { ...result, error, reason: error.message };
  };
}
