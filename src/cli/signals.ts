import { EXIT_INTERRUPTED } from './exit-codes.js';

/**
 * Resolves on the first stop signal; a second one exits at once (130). Ctrl-C (SIGINT), SIGTERM,
 * a closed terminal (SIGHUP) and SIGUSR2 (what some process managers send) all stop the same way:
 * summary, `stopped` event, tunnels closed. Node emits SIGINT on Windows consoles too, and SIGHUP
 * when the console window closes; Ctrl-Break arrives there as SIGBREAK. SIGTERM is never delivered
 * on Windows (TerminateProcess cannot be caught), and listening for it there is harmless.
 */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) process.exit(EXIT_INTERRUPTED);
      stopping = true;
      resolve(signal);
    };
    const signals: NodeJS.Signals[] = process.platform === 'win32' ? ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'];
    for (const signal of signals) process.on(signal, onSignal);
  });
}
