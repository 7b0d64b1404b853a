import { EXIT_INTERRUPTED } from './exit-codes.js';

/**
 * Resolves on the first Ctrl-C or SIGTERM; a second one exits at once. Node emits SIGINT on
 * Windows consoles too; Ctrl-Break arrives there as SIGBREAK. SIGTERM is never delivered on
 * Windows (TerminateProcess cannot be caught), and listening for it there is harmless.
 */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) process.exit(EXIT_INTERRUPTED);
      stopping = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    if (process.platform === 'win32') process.on('SIGBREAK', onSignal);
  });
}
