// tl-tunnel --stdio: as OpenSSH's ProxyCommand with the real ssh client and sshd, and on its own.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { CANARY_KEY, CLI, cliEnv, freePort, listen, randomBytes, runCli, sha256, startEcho, startServer } from './helpers/index.js';
import { requireBinary, startSshd, needsTools } from './helpers/services.js';

const toolSkip = needsTools('ssh', 'sshd', 'ssh-keygen');

const quote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Runs a command to completion with binary stdin/stdout; fails if the canary key shows up anywhere. */
function collect(file, args, { input, env = cliEnv(), timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    let stderr = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.stdin.on('error', () => {}); // the child may exit before reading all of it; its code says why
    child.stdin.end(input);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      for (const [name, text] of [['stdout', stdout.toString('latin1')], ['stderr', stderr]]) {
        if (text.includes(CANARY_KEY) || text.includes(CANARY_KEY.slice(10))) {
          reject(new Error(`the API key leaked into ${path.basename(file)} ${name}:\n${text}`));
          return;
        }
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function withSshThroughTunnel(fn) {
  const ssh = requireBinary('ssh', 'openssh-client');
  const sshd = await startSshd();
  const server = await startServer();
  const tunnels = [];
  const ends = [];
  server.on('open', (t) => tunnels.push(t.port));
  server.on('close', (end) => ends.push(end));
  try {
    const proxyCommand = `${quote(process.execPath)} ${quote(CLI)} --stdio --proxy-url ${server.url} %h ${sshd.port}`;
    const sshArgs = [
      '-F', '/dev/null',
      '-o', `ProxyCommand=${proxyCommand}`,
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'LogLevel=ERROR',
      '-o', 'ConnectTimeout=20',
      '-i', sshd.keyFile,
      '-l', sshd.user,
      'sbx-1',
    ];
    const runSsh = async (command, input) => {
      const r = await collect(ssh, [...sshArgs, command], { input });
      if (r.code !== 0) await new Promise((done) => setTimeout(done, 500)); // let sshd's log catch up
      assert.equal(r.code, 0, `ssh exited ${r.code}:\n${r.stderr}\nsshd log:\n${sshd.log()}\ntunnels ended: ${JSON.stringify(ends)}`);
      return r;
    };
    await fn(runSsh);
    assert.ok(tunnels.length > 0 && tunnels.every((p) => p === sshd.port), `tunnels opened: ${tunnels}`);
  } finally {
    await server.close();
    await sshd.stop();
  }
}

test('ssh with tl-tunnel --stdio as ProxyCommand runs a remote command', { skip: toolSkip, timeout: 60_000 }, async () => {
  await withSshThroughTunnel(async (runSsh) => {
    const r = await runSsh('echo hello-$((6*7))');
    assert.equal(r.stdout.toString(), 'hello-42\n');
  });
});

test('ssh through tl-tunnel --stdio carries 1 MiB of binary stdin intact', { skip: toolSkip, timeout: 60_000 }, async () => {
  await withSshThroughTunnel(async (runSsh) => {
    const data = randomBytes(1024 * 1024);
    const r = await runSsh('sha256sum', data);
    assert.equal(r.stdout.toString().split(' ')[0], sha256(data));
  });
});

test('--stdio relays binary stdin to the sandbox port and its replies to stdout', { timeout: 60_000 }, async () => {
  const echo = await startEcho();
  const server = await startServer();
  try {
    const data = randomBytes(512 * 1024);
    const r = await collect(process.execPath, [CLI, '--stdio', '--proxy-url', server.url, 'sbx-1', String(echo.port)], { input: data });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, data.length);
    assert.equal(sha256(r.stdout), sha256(data));
    assert.equal(r.stderr, '');
  } finally {
    await server.close();
    await echo.close();
  }
});

test('--stdio delivers what the service sends first, before reading anything (an SSH banner)', { timeout: 60_000 }, async () => {
  // The banner often arrives in the same read as the 101 response: it must not be dropped before
  // the relay listens (an ssh client then fails with "banner line contains invalid characters").
  const banner = Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n');
  const target = net.createServer((s) => {
    s.on('error', () => {});
    s.resume(); // read (and drop) what the client sends, so the peer's FIN is seen
    s.end(banner);
  });
  const port = await listen(target);
  const server = await startServer();
  try {
    const runs = Array.from({ length: 6 }, () => collect(process.execPath, [CLI, '--stdio', '--linger', '0.2', '--proxy-url', server.url, 'sbx-1', String(port)], { input: 'SSH-2.0-client\r\n' }));
    for (const r of await Promise.all(runs)) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString('latin1'), banner.toString('latin1'));
    }
  } finally {
    await server.close();
    await new Promise((done) => target.close(done));
  }
});

test('--stdio exit codes: 4 when nothing listens, 3 for a rejected key, 2 for bad ports', { timeout: 60_000 }, async () => {
  const server = await startServer();
  try {
    const closed = String(await freePort());
    const refused = await runCli(['--stdio', '--proxy-url', server.url, 'sbx-1', closed]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, new RegExp(`Nothing is listening on port ${closed} inside sandbox sbx-1`));
    assert.equal(refused.stdout, '');

    const badKey = await runCli(['--stdio', '--proxy-url', server.url, 'sbx-1', closed], { env: { TENSORLAKE_API_KEY: 'tl_apiKey_wrong' } });
    assert.equal(badKey.code, 3, badKey.stderr);
    assert.match(badKey.stderr, /rejected the credentials \(401[;)]/);

    for (const specs of [['22', '23'], ['2222:22'], ['abc']]) {
      const usage = await runCli(['--stdio', '--proxy-url', server.url, 'sbx-1', ...specs]);
      assert.equal(usage.code, 2, `${specs}: ${usage.stderr}`);
      assert.match(usage.stderr, /--stdio give exactly one sandbox port/);
    }
  } finally {
    await server.close();
  }
});
