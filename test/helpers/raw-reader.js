// A local client that tells a reset from a clean end. Node cannot: when an RST arrives while data
// is still queued, libuv reports a hang-up after a short read as end-of-stream ('end'), so a Node
// reader often sees a reset as a FIN. Python's recv() reports ECONNRESET as the kernel does.
import { spawn } from 'node:child_process';

const SCRIPT = `
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
n = 0
print('connected', flush=True)
try:
    while True:
        d = s.recv(65536)
        if not d:
            print('fin', n, flush=True)
            break
        n += len(d)
except ConnectionResetError:
    print('rst', n, flush=True)
`;

/**
 * Connects to 127.0.0.1:port and reads until the end. Returns { connected, ended } where `ended`
 * resolves to { how: 'fin' | 'rst', bytes }.
 */
export function rawReader(port) {
  const child = spawn('python3', ['-c', SCRIPT, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  let onConnected;
  const connected = new Promise((resolve) => (onConnected = resolve));
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    if (out.includes('connected')) onConnected();
  });
  const ended = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', () => {
      const m = /(fin|rst) (\d+)/.exec(out);
      if (m) resolve({ how: m[1], bytes: Number(m[2]) });
      else reject(new Error(`python3 reader failed (the Debian package python3 is needed): ${err}`));
    });
  });
  return { child, connected, ended };
}
