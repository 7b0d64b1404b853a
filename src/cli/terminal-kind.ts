import { chalkStderr } from 'chalk';

/**
 * Whether stderr is a terminal a person watches, where a line may be redrawn in place: a TTY,
 * unless TERM=dumb (no cursor movement) or CI is set (a log that records every redraw). The same
 * test the well-known spinner libraries use.
 */
export function isInteractive(env: NodeJS.ProcessEnv = process.env, stream: { isTTY?: boolean } = process.stderr): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb' && !('CI' in env);
}

/**
 * Whether to colour stderr: chalk's own detection (a TTY that has colours, or FORCE_COLOR, as chalk
 * documents), unless NO_COLOR is set to anything (no-color.org). An explicit FORCE_COLOR other than
 * 0 or false wins over NO_COLOR: it is the more specific request.
 */
export function wantsColor(env: NodeJS.ProcessEnv = process.env, level: number = chalkStderr.level): boolean {
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  if (forced) return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return level > 0;
}
