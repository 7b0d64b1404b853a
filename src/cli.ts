import { VERSION } from './version.js';

// `--version` is what scripts and installers call to probe the tool: answer it without loading the
// option parser, colours and the library.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
} else if (args[0] === 'help' && (args.length === 1 || (args.length === 2 && /^[a-z-]+$/.test(args[1] ?? '')))) {
  // `help [command]`; `help 5432` still forwards port 5432 of a sandbox named "help".
  const { helpMain } = await import('./cli/help.js');
  await helpMain(args[1]);
} else if (args[0] === 'completion' && (args.length === 1 || (args.length === 2 && /^(?:[a-z]+|-h|--help)$/.test(args[1] ?? '')))) {
  // `completion <shell>`, never a sandbox named "completion": a port spec is never a bare word.
  const { completionMain } = await import('./cli/completion/index.js');
  completionMain(args[1]);
} else if (args[0] === 'ps' || args[0] === 'stop' || args[0] === 'logs') {
  // Lifecycle commands; a sandbox with one of these names is forwarded with `tl-tunnel -- stop 5432`.
  const { lifecycleMain } = await import('./cli/lifecycle/commands.js');
  await lifecycleMain(args[0], args.slice(1));
} else {
  const { main } = await import('./cli/main.js');
  main();
}
