// The real redis-cli against a real redis-server, through the built CLI and the reference server.
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, sha256 } from './helpers/index.js';
import { requireBinary, run, startRedis, startTunnel, needsTools } from './helpers/services.js';

const toolSkip = needsTools('redis-server', 'redis-cli');

async function withTunnelToRedis(fn) {
  const redisCli = requireBinary('redis-cli', 'redis-tools');
  const redis = await startRedis();
  let tunnel;
  try {
    tunnel = await startTunnel(redis.port);
    const viaTunnel = (args, options) => run(redisCli, ['-h', '127.0.0.1', '-p', String(tunnel.port), ...args], options);
    const direct = (args, options) => run(redisCli, ['-h', '127.0.0.1', '-p', String(redis.port), ...args], options);
    await fn({ viaTunnel, direct });
    assert.ok(tunnel.tunnels.length > 0 && tunnel.tunnels.every((p) => p === redis.port), `tunnels opened: ${tunnel.tunnels}`);
  } finally {
    const r = await tunnel?.stop();
    await redis.stop();
    if (r) assert.equal(r.code, 0, r.stderr);
  }
}

test('redis-cli SET and GET through the tunnel', { skip: toolSkip, timeout: 60_000 }, async () => {
  await withTunnelToRedis(async ({ viaTunnel, direct }) => {
    assert.equal((await viaTunnel(['PING'])).stdout.toString(), 'PONG\n');
    assert.equal((await viaTunnel(['SET', 'k', 'v-through-tunnel'])).stdout.toString(), 'OK\n');
    assert.equal((await viaTunnel(['GET', 'k'])).stdout.toString(), 'v-through-tunnel\n');
    // The value really reached the server, not some local echo.
    assert.equal((await direct(['GET', 'k'])).stdout.toString(), 'v-through-tunnel\n');
  });
});

test('redis-cli stores and reads back a 1 MiB binary value through the tunnel', { skip: toolSkip, timeout: 60_000 }, async () => {
  await withTunnelToRedis(async ({ viaTunnel, direct }) => {
    const value = randomBytes(1024 * 1024);
    // -x takes the last argument from stdin, byte for byte.
    assert.equal((await viaTunnel(['-x', 'SET', 'big'], { input: value })).stdout.toString(), 'OK\n');
    assert.equal((await direct(['STRLEN', 'big'])).stdout.toString(), `${value.length}\n`);
    // Without a TTY redis-cli prints the raw value plus a newline.
    const back = (await viaTunnel(['GET', 'big'])).stdout;
    assert.equal(back.length, value.length + 1);
    assert.equal(sha256(back.subarray(0, value.length)), sha256(value));
    assert.equal(sha256((await direct(['GET', 'big'])).stdout), sha256(back));
  });
});
