// Memory is bounded by frames too (issue 10, item 3): a peer that floods 1-byte frames to a local
// client that never reads must not grow the CLI by a queued write per frame. Measured as the CLI
// child's resident memory, against a generous bound.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { listen, startCli, eventually } from './helpers/index.js';
import { frame, switching } from './helpers/hostile.js';

const MiB = 1024 * 1024;
const TUNNELS = 2;
const FLOOD_BYTES = 48 * MiB; // per tunnel: 16 million 1-byte frames at most
const RSS_GROWTH_BOUND = 60 * MiB;
const FRAMES = Buffer.concat(Array.from({ length: 21_000 }, () => frame(2, Buffer.from([0x61]))));

function rssOf(pid) {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb * 1024;
}

/** Answers every upgrade, then writes 1-byte binary frames as fast as the client takes them. */
async function startFlooder() {
  const flows = [];
  const server = http.createServer();
  server.on('upgrade', (req, socket) => {
    const flow = { socket, written: 0 };
    flows.push(flow);
    socket.on('error', () => {});
    socket.resume();
    socket.write(switching(req));
    const pump = () => {
      while (flow.written < FLOOD_BYTES && !socket.destroyed) {
        flow.written += FRAMES.length;
        if (!socket.write(FRAMES)) return;
      }
    };
    socket.on('drain', pump);
    pump();
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    flows,
    close: () => {
      for (const f of flows) f.socket.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

test('a flood of 1-byte frames to local clients that never read leaves the CLI memory bounded', async () => {
  const flooder = await startFlooder();
  // A small young generation, so garbage from parsing millions of frames does not pass for retained memory.
  const cli = await startCli(['--no-check', '--keepalive', '0', '--proxy-url', flooder.url, 'sbx-flood', ':7000'], { env: { NODE_OPTIONS: '--max-semi-space-size=1' } });
  const sockets = [];
  try {
    const baseline = rssOf(cli.child.pid);
    for (let i = 0; i < TUNNELS; i++) {
      const s = net.connect(cli.port, '127.0.0.1');
      s.on('error', () => {});
      s.pause(); // never reads
      sockets.push(s);
    }
    // Until every flood is written or has stalled against the CLI's backpressure.
    let last = -1;
    let since = Date.now();
    await eventually(
      () => {
        const now = flooder.flows.reduce((sum, f) => sum + f.written, 0);
        if (now !== last) {
          last = now;
          since = Date.now();
        }
        return flooder.flows.length === TUNNELS && (flooder.flows.every((f) => f.written >= FLOOD_BYTES) || Date.now() - since > 3000);
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the floods to finish or stall' },
    );
    const growth = rssOf(cli.child.pid) - baseline;
    assert.ok(growth < RSS_GROWTH_BOUND, `the CLI grew by ${(growth / MiB).toFixed(1)} MiB for ${TUNNELS} flooded tunnels`);
  } finally {
    for (const s of sockets) s.destroy();
    await cli.stop();
    await flooder.close();
  }
});
