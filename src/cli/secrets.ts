import { registerSecret } from '../index.js';

const SECRET_FLAGS = ['--api-key', '--pat'];

/**
 * Registers every secret the CLI could be handed, before anything parses or validates: argument
 * errors quote what was typed (a key pasted as the sandbox, a port or another option's value), and
 * redaction only hides secrets it knows about.
 */
export function registerCliSecrets(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  registerSecret(env.TENSORLAKE_API_KEY);
  registerSecret(env.TENSORLAKE_PAT);
  argv.forEach((arg, i) => {
    for (const flag of SECRET_FLAGS) {
      if (arg === flag) registerSecret(argv[i + 1]);
      else if (arg.startsWith(`${flag}=`)) registerSecret(arg.slice(flag.length + 1));
    }
  });
}
