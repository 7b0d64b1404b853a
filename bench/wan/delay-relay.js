// A userspace WAN on loopback: node delay-relay.js <upstream-port> <rtt-ms>; prints {"port":N}.
//
// The model. Every chunk read from one side is written to the other RTT/2 after it was read, in
// order, both ways. The TCP handshake cannot be delayed from userspace (the client's connect()
// returns as soon as we accept), so it is charged where it shows: the upstream connection is opened
// 1.5 RTT after the accept, when a real server's accept() would return (SYN, SYN-ACK, ACK), and the
// client's bytes wait for it. So connect -> first echo costs 2 RTT and a server-speaks-first banner
// reaches the client 2 RTT after its connect(), as over a real network. EOF (FIN) travels like data;
// a reset is passed on RTT/2 later. Each direction holds at most WINDOW bytes in flight (the source
// is paused beyond that), so bulk transfers see a bandwidth-delay limit, not unbounded buffering.
import net from 'node:net';

const upstreamPort = Number(process.argv[2]);
const rtt = Number(process.argv[3]);
const half = rtt / 2;
const WINDOW = 8 * 1024 * 1024;
const now = () => performance.now();

/** One direction: chunks (or null for EOF) delivered to `dest` at their time, in order. */
class Lane {
  constructor(source) {
    this.source = source;
    this.queue = [];
    this.queued = 0;
    this.dest = undefined;
    this.timer = undefined;
    this.notBefore = 0;
  }

  push(chunk) {
    const at = Math.max(now() + half, this.notBefore);
    this.queue.push({ at, chunk });
    if (chunk) {
      this.queued += chunk.length;
      if (this.queued > WINDOW) this.source.pause();
    }
    this.pump();
  }

  attach(dest) {
    this.dest = dest;
    dest.on('drain', () => this.pump());
    this.pump();
  }

  pump() {
    if (this.dest === undefined || this.timer !== undefined) return;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const wait = head.at - now();
      if (wait > 0.5) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      if (this.dest.writableNeedDrain) return;
      this.queue.shift();
      if (head.chunk === null) {
        this.dest.end();
        continue;
      }
      this.queued -= head.chunk.length;
      this.dest.write(head.chunk);
      if (this.queued <= WINDOW) this.source.resume();
    }
  }
}

// With WAN_LOG_ACCEPTS=1, one line per accepted connection (the idle-forwarder check counts them).
const logAccepts = process.env.WAN_LOG_ACCEPTS === '1';

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const accepted = now();
  if (logAccepts) process.stdout.write(`${JSON.stringify({ accept: Date.now() })}\n`);
  const up = new Lane(client);
  up.notBefore = accepted + 1.5 * rtt;
  let upstream;
  const down = new Lane({ pause: () => upstream?.pause(), resume: () => upstream?.resume() });
  // A reset (not a clean close, whose FIN travels in its lane) reaches the other side RTT/2 later.
  const cut = (other) => () => setTimeout(() => {
    const s = other();
    if (s && !s.destroyed) s.resetAndDestroy();
  }, half);
  client.on('data', (chunk) => up.push(chunk));
  client.on('end', () => up.push(null));
  client.on('error', cut(() => upstream));
  setTimeout(() => {
    if (client.destroyed && up.queue.length === 0) return;
    upstream = net.connect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true, noDelay: true });
    upstream.on('data', (chunk) => down.push(chunk));
    upstream.on('end', () => down.push(null));
    upstream.on('error', cut(() => client));
    upstream.once('connect', () => up.attach(upstream));
    down.attach(client);
  }, 1.5 * rtt);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.on('SIGTERM', () => process.exit(0));
