// The real psql against a real PostgreSQL, through the built CLI and the reference server.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sha256 } from './helpers/index.js';
import { psqlBinary, run, startPostgres, startTunnel, needsTools } from './helpers/services.js';

const toolSkip = needsTools('initdb', 'postgres', 'psql');

const ROWS = 5000;
const md5 = (text) => createHash('md5').update(text).digest('hex');

test('psql creates and reads back thousands of rows through the tunnel', { skip: toolSkip, timeout: 120_000 }, async () => {
  const psql = psqlBinary();
  const pg = await startPostgres();
  let tunnel;
  try {
    tunnel = await startTunnel(pg.port);
    const viaTunnel = (sql) =>
      run(psql, ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(tunnel.port), '-U', pg.user, '-d', pg.database, '-At', '-c', sql], {
        env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
        timeoutMs: 60_000,
      });
    const direct = (sql) => pg.psql(['-c', sql], { timeoutMs: 60_000 });

    await viaTunnel(`CREATE TABLE items AS SELECT g AS id, md5(g::text) AS h, repeat('x', g % 97) AS pad FROM generate_series(1, ${ROWS}) g`);
    assert.equal((await direct('SELECT count(*) FROM items')).stdout.toString(), `${ROWS}\n`);

    // A checksum the server computes, checked against one computed here from first principles.
    let expected = '';
    for (let g = 1; g <= ROWS; g++) expected += `${g > 1 ? ',' : ''}${g}:${md5(String(g))}:${'x'.repeat(g % 97)}`;
    const aggregate = `SELECT md5(string_agg(id || ':' || h || ':' || pad, ',' ORDER BY id)) FROM items`;
    assert.equal((await viaTunnel(aggregate)).stdout.toString(), `${md5(expected)}\n`);

    // Every row through the tunnel, byte for byte the same as straight from the server.
    const all = 'SELECT id, h, pad FROM items ORDER BY id';
    const tunnelled = (await viaTunnel(all)).stdout;
    const straight = (await direct(all)).stdout;
    assert.equal(tunnelled.toString().split('\n').filter(Boolean).length, ROWS);
    assert.equal(sha256(tunnelled), sha256(straight));
    assert.ok(tunnel.tunnels.length >= 3 && tunnel.tunnels.every((p) => p === pg.port), `tunnels opened: ${tunnel.tunnels}`);
  } finally {
    const r = await tunnel?.stop();
    await pg.stop();
    if (r) assert.equal(r.code, 0, r.stderr);
  }
});
