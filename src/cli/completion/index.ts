import { ErrorCodes, TunnelError } from '../../index.js';
import { buildProgram } from '../program.js';
import { buildServerProgram } from '../server-main.js';
import { bashScript } from './bash.js';
import { powershellScript } from './powershell.js';
import { fishScript } from './fish.js';
import { COMMAND_WORDS, SHELLS, commandSpec, type Shell } from './spec.js';
import { zshScript } from './zsh.js';

/** The completion script for `shell`, covering tl-tunnel and tl-tunnel-server. */
export function completionScript(shell: string): string {
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new TunnelError(ErrorCodes.USAGE, `No completion for "${shell.slice(0, 40)}": use tl-tunnel completion ${SHELLS.slice(0, -1).join(', ')} or ${SHELLS.at(-1)}`);
  }
  const specs = [commandSpec(buildProgram(), Object.keys(COMMAND_WORDS)), commandSpec(buildServerProgram())];
  const render: Record<Shell, typeof bashScript> = { bash: bashScript, zsh: zshScript, fish: fishScript, powershell: powershellScript };
  return render[shell as Shell](specs);
}

/** `tl-tunnel completion <shell>`: the script on stdout, or one line and exit 2. */
export function completionMain(shell: string): void {
  try {
    process.stdout.write(completionScript(shell));
  } catch (err) {
    if (!(err instanceof TunnelError)) throw err;
    process.stderr.write(`error ${err.message}\n`);
    process.exitCode = 2;
  }
}
