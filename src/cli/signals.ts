import { EXIT_INTERRUPTED } from './exit-codes.js';

/** What asked the process to stop: a signal, or the `shutdown` message over an IPC channel. */
export type StopReason = NodeJS.Signals | 'shutdown';

/**
 * The signals that stop gracefully, per platform. Ctrl-C (SIGINT), SIGTERM, a closed terminal
 * (SIGHUP) and SIGUSR2 (what some process managers send) all stop the same way. On Windows Node
 * emits SIGINT for Ctrl-C, SIGBREAK for Ctrl-Break and SIGHUP when the console window closes (the
 * process is then killed about 10 s later, enough for the summary). SIGTERM is never delivered on
 * Windows (TerminateProcess cannot be caught) and listening for it there is harmless; a signal sent
 * by another process (child.kill, taskkill /F) kills at once: that is what the IPC message is for.
 */
export function stopSignals(platform: NodeJS.Platform = process.platform): NodeJS.Signals[] {
  return platform === 'win32' ? ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'];
}

/** `'shutdown'` or `{ type: 'shutdown' }`: what a parent sends over IPC to stop us like Ctrl-C. */
export function isShutdownMessage(message: unknown): boolean {
  return message === 'shutdown' || (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'shutdown');
}

/**
 * Resolves on the first stop: a signal of stopSignals(), or, when a parent spawned us with an IPC
 * channel (process.send exists), its `shutdown` message, the one clean stop a parent has on Windows.
 * Either way: summary, `stopped` event, tunnels closed, exit 0. A second stop exits at once (130).
 */
export function untilStopSignal(): Promise<StopReason> {
  return new Promise((resolve) => {
    let stopping = false;
    const onStop = (reason: StopReason): void => {
      if (stopping) process.exit(EXIT_INTERRUPTED);
      stopping = true;
      resolve(reason);
    };
    for (const signal of stopSignals()) process.on(signal, onStop);
    if (process.send === undefined || process.channel === undefined) return;
    process.on('message', (message: unknown) => {
      if (isShutdownMessage(message)) onStop('shutdown');
    });
    // Listening for messages refs the channel: the open channel alone must never keep us running
    // (the tunnels and servers do that), nor delay the exit once they are closed.
    process.channel.unref();
  });
}
