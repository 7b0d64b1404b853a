// A plain Node TCP relay: accepts on 127.0.0.1 (free port, printed as JSON) and pipes each
// connection to 127.0.0.1:<target>. Two of these in a chain are the structural ceiling of a
// tunnel client + server pair without WebSocket.
import net from 'node:net';

const target = Number(process.argv[2]);
const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (local) => {
  const remote = net.connect({ host: '127.0.0.1', port: target, allowHalfOpen: true, noDelay: true });
  local.pipe(remote);
  remote.pipe(local);
  const both = () => {
    local.destroy();
    remote.destroy();
  };
  for (const s of [local, remote]) {
    s.on('error', both);
    s.on('close', both);
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.on('SIGTERM', () => process.exit(0));
