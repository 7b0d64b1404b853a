// Local connections a test makes to the CLI's listener.
import net from 'node:net';
import { once } from 'node:events';

/**
 * Connects and waits until the CLI drops the connection (its tunnel could not open); returns the
 * local port the connection came from, as the CLI reports it in `peer`.
 */
export async function droppedConnection(port) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const localPort = socket.localPort;
  await once(socket, 'close');
  return localPort;
}
