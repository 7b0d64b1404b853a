// A client shaped like Tensorlake's SDK createTunnel: a local TCP server, and per accepted
// connection one `ws` WebSocket with default options (its own TCP+TLS handshake each time, no pool,
// no session cache), bytes relayed once it is open. node sdk-client.js <proxy-base-url> <remote-port>;
// the key comes from TENSORLAKE_API_KEY; prints {"port":N}.
import net from 'node:net';
import WebSocket from 'ws';

const [base, remotePort] = process.argv.slice(2);
const url = `${base.replace(/^http/, 'ws')}/api/v1/tunnels/tcp?port=${remotePort}`;
const headers = { Authorization: `Bearer ${process.env.TENSORLAKE_API_KEY}`, 'X-Tensorlake-Sandbox-Id': 'bench' };

const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
  const ws = new WebSocket(url, { headers });
  socket.on('error', () => ws.terminate());
  ws.on('error', () => socket.destroy());
  ws.on('open', () => {
    socket.on('data', (chunk) => ws.send(chunk));
    socket.on('end', () => ws.close());
    socket.resume();
  });
  ws.on('message', (data) => socket.write(data));
  ws.on('close', () => socket.end());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.on('SIGTERM', () => process.exit(0));
