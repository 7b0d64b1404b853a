// A program that knows nothing of proxies, made to use proxy mode by proxychains4: psql reaches
// "host=my-db" (a name only the proxy understands, resolved by proxy_dns) on a real PostgreSQL.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startCli, startServer, sandboxOf } from './helpers/index.js';
import { psqlBinary, requireBinary, run, startPostgres, needsTools } from './helpers/services.js';

const toolSkip = needsTools('proxychains4', 'initdb', 'postgres', 'psql');

test('proxychains4 + psql "host=my-db" through the SOCKS5 port', { skip: toolSkip, timeout: 120_000 }, async () => {
  const proxychains = requireBinary('proxychains4', 'proxychains4');
  const psql = psqlBinary();
  const pg = await startPostgres();
  const server = await startServer();
  const sandboxes = [];
  server.on('request', (req) => sandboxes.push(sandboxOf(req.headers)));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tl-proxychains-'));
  let cli;
  try {
    cli = await startCli(['--proxy-url', server.url, '-D', '127.0.0.1:0']);
    const conf = path.join(dir, 'proxychains.conf');
    // proxy_dns: my-db is not resolved locally; its name travels in the SOCKS5 request.
    await writeFile(conf, ['strict_chain', 'proxy_dns', 'remote_dns_subnet 224', 'tcp_read_time_out 15000', 'tcp_connect_time_out 8000', '[ProxyList]', `socks5 127.0.0.1 ${cli.port}`, ''].join('\n'));
    const sql = "SELECT 'through ' || current_database() || ' ' || sum(g) FROM generate_series(1, 1000) g";
    const { stdout } = await run(proxychains, ['-q', '-f', conf, psql, '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql, `host=my-db port=${pg.port} user=postgres dbname=postgres sslmode=disable gssencmode=disable connect_timeout=10`], {
      timeoutMs: 60_000,
    });
    assert.equal(stdout.toString(), 'through postgres 500500\n');
    assert.ok(sandboxes.length >= 1 && sandboxes.every((s) => s === 'my-db'), `upgrades: ${sandboxes}`);
    assert.ok(cli.events.some((e) => e.event === 'open' && e.sandbox === 'my-db' && e.remotePort === pg.port));
  } finally {
    const r = await cli?.stop();
    await server.close();
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
    if (r) assert.equal(r.code, 0, r.stderr);
  }
});
