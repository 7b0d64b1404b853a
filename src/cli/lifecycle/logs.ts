import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, TunnelError, controlDirectory, isTunnelError, listTunnels, processAlive, selectTunnels } from '../../index.js';
import { writeTo } from '../std-streams.js';

const FOLLOW_POLL_MS = 200;

/** The log of a running detached tunnel, or of one that ended (its log is kept), with the pid to follow. */
async function findLog(selector: string): Promise<{ file: string; pid?: number }> {
  const { running } = await listTunnels();
  try {
    const [tunnel] = selectTunnels(running, [selector]);
    if (tunnel && tunnel.status.log) return { file: tunnel.status.log, pid: tunnel.status.pid };
    if (tunnel) throw new TunnelError(ErrorCodes.NO_SUCH_TUNNEL, `Tunnel ${tunnel.status.id} runs in a terminal (pid ${tunnel.status.pid}), not detached: its output is in that terminal, there is no log`);
  } catch (err) {
    if (!isTunnelError(err) || err.code !== ErrorCodes.NO_SUCH_TUNNEL || !/^No running tunnel/.test(err.message)) throw err;
  }
  // A tunnel that has ended: its log stays for a week, found by id (or a unique start of one).
  const dir = controlDirectory();
  const ended = /^[a-z2-9]{3,8}$/.test(selector) ? safeList(dir).filter((n) => n.endsWith('.log') && n.startsWith(selector)) : [];
  if (ended.length === 1) return { file: path.join(dir, ended[0] as string) };
  throw new TunnelError(ErrorCodes.NO_SUCH_TUNNEL, `No detached tunnel matches ${JSON.stringify(selector)}, running or ended in the last week; \`tl-tunnel ps\` lists the running ones`);
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Prints a detached tunnel's log; with `follow`, goes on until the tunnel's process is gone. */
export async function followLog(selector: string, follow: boolean): Promise<number> {
  const { file, pid } = await findLog(selector);
  const fd = openSync(file, 'r');
  const buffer = Buffer.alloc(64 * 1024);
  let position = 0;
  const drain = (): void => {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, position);
      if (n === 0) return;
      position += n;
      writeTo(process.stdout, buffer.subarray(0, n).toString('utf8'));
    }
  };
  try {
    drain();
    while (follow && pid !== undefined && processAlive(pid)) {
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
      drain();
    }
    drain();
  } finally {
    closeSync(fd);
  }
  return 0;
}
