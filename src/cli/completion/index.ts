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

/** Where each shell looks for the script: what `completion --help` shows. */
const INSTALL: Record<Shell, [where: string, command: string]> = {
  bash: ['bash, in ~/.bashrc:', 'source <(tl-tunnel completion bash)'],
  zsh: ['zsh, in ~/.zshrc after compinit:', 'source <(tl-tunnel completion zsh)'],
  fish: ['fish (a file per command name, so a link for tl-tunnel-server):', 'tl-tunnel completion fish > ~/.config/fish/completions/tl-tunnel.fish\n  ln -sf tl-tunnel.fish ~/.config/fish/completions/tl-tunnel-server.fish'],
  powershell: ['PowerShell, in $PROFILE:', 'tl-tunnel completion powershell | Out-String | Invoke-Expression'],
};

/** `tl-tunnel completion --help`. */
export function completionHelp(): string {
  const rows = SHELLS.map((shell) => `${INSTALL[shell][0]}\n  ${INSTALL[shell][1]}`);
  return `Usage: tl-tunnel completion ${SHELLS.join('|')}

Print a completion script for tl-tunnel and tl-tunnel-server on stdout.

${rows.join('\n')}

Scripts loaded on demand, by command name: see "Shell completion" in the README.
`;
}

/** `tl-tunnel completion <shell>`: the script on stdout, or one line and exit 2. */
export function completionMain(shell: string | undefined): void {
  if (shell === '--help' || shell === '-h' || shell === 'help') {
    process.stdout.write(completionHelp());
    return;
  }
  if (shell === undefined) {
    process.stderr.write(`error Missing the shell: give one of ${SHELLS.join(', ')}\n\n${completionHelp()}`);
    process.exitCode = 2;
    return;
  }
  try {
    process.stdout.write(completionScript(shell));
  } catch (err) {
    if (!(err instanceof TunnelError)) throw err;
    process.stderr.write(`error ${err.message}\n`);
    process.exitCode = 2;
  }
}
