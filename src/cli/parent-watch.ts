import { processAlive } from '../index.js';

/** How often the parent is checked: cheap, and soon enough for a port to be given back. */
const POLL_MS = 1000;

/**
 * Resolves once the process that started tl-tunnel has gone away without stopping it. npm's npx
 * does not pass SIGTERM on to the program it runs, so `kill <npx pid>` would leave tl-tunnel
 * running, reparented, holding its ports. The well-known check: the parent pid changes when the
 * parent dies (POSIX reparents to init or a subreaper); where it does not (Windows), the old parent
 * no longer exists. Not armed when the parent is already init (a service manager, `nohup … &`
 * whose shell has left): nothing would change. The timer never keeps the process alive.
 */
export function untilParentGone(): { gone: Promise<number>; stop: () => void } {
  const parent = process.ppid;
  let timer: NodeJS.Timeout | undefined;
  const gone = new Promise<number>((resolve) => {
    if (parent <= 1) return;
    timer = setInterval(() => {
      if (process.ppid === parent && processAlive(parent)) return;
      clearInterval(timer);
      resolve(parent);
    }, POLL_MS).unref();
  });
  return { gone, stop: () => clearInterval(timer) };
}
