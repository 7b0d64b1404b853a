// `ssh -L` as a relay pair, the way a developer forwards a port today: a throwaway sshd on loopback
// (its own host key, one client key, nothing from the machine's ssh config) and the OpenSSH client
// forwarding a free local port to the target. The client process is the one measured.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startChild, waitListening } from './proc.js';

function binary(name) {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin']) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

export const hasSsh = () => binary('sshd') !== undefined && binary('ssh') !== undefined && binary('ssh-keygen') !== undefined;

/** sshd on 127.0.0.1 in a temp dir: { port, keyFile, stop() }. */
async function startSshd() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tl-bench-sshd-'));
  const keygen = (file, comment) => execFileSync(binary('ssh-keygen'), ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const hostKey = path.join(dir, 'host');
  const keyFile = path.join(dir, 'client');
  keygen(hostKey, 'bench-host');
  keygen(keyFile, 'bench-client');
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${keyFile}.pub`), { mode: 0o600 });
  // sshd insists on its privilege separation directory.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(config, [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`, 'PidFile none', 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'AllowTcpForwarding yes', 'LogLevel ERROR', ''].join('\n'));
  const server = await startChild(binary('sshd'), ['-D', '-e', '-f', config], { name: 'sshd' });
  await waitListening(port);
  return { port, keyFile, stop: async () => (await server.stop(), rmSync(dir, { recursive: true, force: true })) };
}

/** `ssh -N -L` in front of the target (optionally with one cipher), through a fresh sshd. */
export async function sshPair(target, cipher) {
  const sshd = await startSshd();
  const local = await freePort();
  const args = ['-N', '-F', '/dev/null', '-i', sshd.keyFile, '-p', String(sshd.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ExitOnForwardFailure=yes', ...(cipher ? ['-c', cipher] : []), '-L', `127.0.0.1:${local}:127.0.0.1:${target.port}`, `${os.userInfo().username}@127.0.0.1`];
  const client = await startChild(binary('ssh'), args, { name: 'ssh' });
  try {
    await waitListening(local);
  } catch (err) {
    await Promise.all([client.stop(), sshd.stop()]);
    throw new Error(`ssh -L did not listen: ${err.message}\n${client.output()}`);
  }
  return { name: cipher ? `ssh -L ${cipher}` : 'ssh -L', entryPort: local, clientPid: client.pid, stop: () => Promise.all([client.stop(), sshd.stop()]) };
}
