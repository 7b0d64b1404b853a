// Memory is bounded by frames too (issue 10, item 3): a peer that floods 1-byte frames to a local
// client that never reads must not grow the CLI (nor the reference server, the other way) by a
// queued write per frame. Measured as the child process's resident memory, against a generous bound.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { CANARY_KEY, PROC_SKIP, SERVER_CLI, cliEnv, listen, rssBytes, startCli, eventually } from './helpers/index.js';
import { startService } from './helpers/faults.js';
import { frame, switching } from './helpers/hostile.js';

const MiB = 1024 * 1024;
const TUNNELS = 2;
const FLOOD_BYTES = 48 * MiB; // per tunnel: 16 million 1-byte frames at most
const RSS_GROWTH_BOUND = 60 * MiB;
// Garbage from parsing millions of frames must not pass for retained memory: a small young
// generation, and an old space that is collected before it grows (Node 22+ lets it grow lazily to
// well over 100 MiB of garbage). Memory the relay really retained (the bug: a queued write per
// frame, ~85 MiB a tunnel) cannot hide under this: the process would run out of heap and die.
const HEAP_OPTIONS = '--max-semi-space-size=1 --max-old-space-size=64';
const FRAMES = Buffer.concat(Array.from({ length: 21_000 }, () => frame(2, Buffer.from([0x61]))));

const rssOf = rssBytes;

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

test('a flood of 1-byte frames to local clients that never read leaves the CLI memory bounded', { skip: PROC_SKIP }, async () => {
  const flooder = await startFlooder();
  const cli = await startCli(['--no-check', '--keepalive', '0', '--proxy-url', flooder.url, 'sbx-flood', ':7000'], { env: { NODE_OPTIONS: HEAP_OPTIONS } });
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

test('the reference server too: 1-byte frames from a client to a target that never reads leave its memory bounded', { skip: PROC_SKIP }, async () => {
  const target = await startService((s) => s.pause()); // never reads
  const child = spawn(process.execPath, [SERVER_CLI, '--json', '--port', '0', '--token', CANARY_KEY, '--keepalive', '0'], {
    env: cliEnv({ NODE_OPTIONS: HEAP_OPTIONS }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sockets = [];
  try {
    const [line] = await once(child.stdout.setEncoding('utf8'), 'data');
    const { port } = JSON.parse(line.split('\n')[0]);
    const baseline = rssOf(child.pid);
    // Masked client frames (a zero mask leaves the payload as is): 7 bytes per 1-byte frame.
    const masked = Buffer.concat(Array.from({ length: 9000 }, () => Buffer.from([0x82, 0x81, 0, 0, 0, 0, 0x61])));
    const flows = [];
    for (let i = 0; i < TUNNELS; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(socket);
      socket.write(
        `GET /api/v1/tunnels/tcp?port=${target.port} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CANARY_KEY}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      await once(socket, 'data'); // the 101
      socket.resume();
      const flow = { written: 0 };
      flows.push(flow);
      const pump = () => {
        while (flow.written < 2 * FLOOD_BYTES && !socket.destroyed) {
          flow.written += masked.length;
          if (!socket.write(masked)) return;
        }
      };
      socket.on('drain', pump);
      pump();
    }
    let last = -1;
    let since = Date.now();
    await eventually(
      () => {
        const now = flows.reduce((sum, f) => sum + f.written, 0);
        if (now !== last) {
          last = now;
          since = Date.now();
        }
        return flows.every((f) => f.written >= 2 * FLOOD_BYTES) || Date.now() - since > 3000;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the floods to finish or stall' },
    );
    const growth = rssOf(child.pid) - baseline;
    assert.ok(growth < RSS_GROWTH_BOUND, `the server grew by ${(growth / MiB).toFixed(1)} MiB for ${TUNNELS} flooded tunnels`);
  } finally {
    for (const s of sockets) s.destroy();
    child.kill('SIGKILL');
    await target.close();
  }
});
