import { completionHelp } from './completion/index.js';
import { LIFECYCLE_COMMANDS } from './lifecycle/commands.js';

const TOPICS = ['completion', ...LIFECYCLE_COMMANDS, 'help'] as const;

/**
 * `tl-tunnel help [command]`: the same text as `--help` (of the command, when one is named), on
 * stdout, exit 0; an unknown command is a usage error (exit 2) that lists the known ones.
 */
export async function helpMain(topic: string | undefined): Promise<void> {
  if (topic === undefined || topic === 'help') {
    const { main } = await import('./main.js');
    main([process.argv[0] ?? 'node', process.argv[1] ?? 'tl-tunnel', '--help']);
  } else if (topic === 'completion') {
    process.stdout.write(completionHelp());
  } else if ((LIFECYCLE_COMMANDS as readonly string[]).includes(topic)) {
    const { lifecycleMain } = await import('./lifecycle/commands.js');
    await lifecycleMain(topic, ['--help']);
  } else {
    process.stderr.write(`error No command "${topic.slice(0, 40)}": tl-tunnel help shows the main help; commands with their own: ${TOPICS.filter((t) => t !== 'help').join(', ')}\n`);
    process.exitCode = 2;
  }
}
