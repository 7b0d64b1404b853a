// `ssh -N -L` as a relay pair: a throwaway sshd on loopback (its own host and user keys in a temp
// dir) and the OpenSSH client forwarding a free port to the target. The client process is what
// the tunnel CLI is compared with: the same job (local port -> encrypted stream -> remote port).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { sshdConfig } from '../../test/helpers/sshd-config.js';
import { freePort, startChild, waitListening } from './proc.js';

const SSHD = '/usr/sbin/sshd';

/** Whether ssh, sshd and ssh-keygen are all there (the ssh rows are skipped otherwise). */
export function hasSsh() {
  return [['ssh', '-V'], [SSHD, '-V'], ['ssh-keygen', '-?']].every(([cmd, arg]) => {
    try {
      execFileSync(cmd, [arg], { stdio: 'ignore' });
    } catch (err) {
      // sshd and ssh-keygen exit 1 after their usage: only a missing binary counts.
      return err.code !== 'ENOENT';
    }
    return true;
  });
}

function keys(dir) {
  const hostKey = path.join(dir, 'host_ed25519');
  const userKey = path.join(dir, 'user_ed25519');
  for (const file of [hostKey, userKey]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], { stdio: 'ignore' });
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${userKey}.pub`), { mode: 0o600 });
  return { hostKey, userKey };
}

async function startSshd(dir, hostKey) {
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(config, sshdConfig({ port, hostKey, authorizedKeys: path.join(dir, 'authorized_keys'), logLevel: 'ERROR' }));
  // sshd insists on its privilege separation directory even with its own config.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  // sshd re-executes itself, so it runs by absolute path; -e logs to stderr, -D stays in front.
  const h = await startChild(SSHD, ['-D', '-e', '-f', config], { name: 'sshd' });
  await waitListening(port);
  return { ...h, port };
}

/**
 * sshd + `ssh -N -L 127.0.0.1:<free>:127.0.0.1:<target>` as one relay pair; `cipher` picks one
 * with -c, otherwise OpenSSH's default order decides (chacha20-poly1305 first).
 */
export async function sshRelays(target, { cipher, name = 'ssh -L' } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'tl-bench-ssh-'));
  const stops = [];
  const stop = async () => {
    await Promise.all(stops.map((s) => s()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const { hostKey, userKey } = keys(dir);
    const sshd = await startSshd(dir, hostKey);
    stops.push(() => sshd.stop());
    const entryPort = await freePort();
    const args = [
      '-N', '-F', '/dev/null',
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'IdentitiesOnly=yes', '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR',
      ...(cipher ? ['-c', cipher] : []),
      '-i', userKey, '-l', userInfo().username, '-p', String(sshd.port),
      '-L', `127.0.0.1:${entryPort}:127.0.0.1:${target.port}`,
      '127.0.0.1',
    ];
    const client = await startChild('ssh', args, { name: 'ssh' });
    stops.push(() => client.stop());
    await waitListening(entryPort);
    return { name, entryPort, clientPid: client.pid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
