// Preloaded (node --import) into a tl-tunnel client only for the TLS resumption check, never while
// timing: counts full and resumed handshakes of every tls.connect and writes them to
// $BENCH_TLS_PROBE as JSON after each one, with the protocol and cipher suite negotiated.
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';

const counts = { full: 0, resumed: 0, protocol: '', cipher: '' };
const connect = tls.connect;
tls.connect = function probedConnect(...args) {
  const socket = connect.apply(this, args);
  socket.once('secureConnect', () => {
    counts[socket.isSessionReused() ? 'resumed' : 'full'] += 1;
    counts.protocol = socket.getProtocol() ?? '';
    counts.cipher = socket.getCipher()?.standardName ?? '';
    writeFileSync(process.env.BENCH_TLS_PROBE, JSON.stringify(counts));
  });
  return socket;
};
