import { Command, CommanderError } from 'commander';
import { ErrorCodes, TunnelError, isTunnelError, killCommand, listTunnels, selectTunnels, stopTunnel, type RunningTunnel } from '../../index.js';
import { exitCodeFor } from '../exit-codes.js';
import { terminalLine } from '../sanitize.js';
import { guardStdStreams, writeTo } from '../std-streams.js';
import { followLog } from './logs.js';
import { formatTable } from './table.js';

/** The words that make `tl-tunnel <word> ...` a lifecycle command rather than a sandbox name. */
export const LIFECYCLE_COMMANDS = ['ps', 'stop', 'logs'] as const;

function say(line: string): void {
  writeTo(process.stderr, `${terminalLine(line)}\n`);
}

function print(text: string): void {
  writeTo(process.stdout, text);
}

function subcommand(name: string, summary: string): Command {
  return new Command(name)
    .description(summary)
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: (t) => process.stdout.write(t), writeErr: (t) => process.stderr.write(t), outputError: () => {} });
}

async function ps(args: string[]): Promise<number> {
  const program = subcommand('tl-tunnel ps', 'List the tunnels of this user that are running (detached or in a terminal).').option('--json', 'a JSON array on stdout');
  program.parse(args, { from: 'user' });
  const { running, warnings } = await listTunnels();
  for (const w of warnings) say(`warning ${w}`);
  if (program.opts().json) {
    print(`${JSON.stringify(running.map((t) => t.status))}\n`);
    return 0;
  }
  if (running.length === 0) {
    say('No tunnels running');
    return 0;
  }
  print(formatTable(running.map((t) => t.status)));
  return 0;
}

async function stop(args: string[]): Promise<number> {
  const program = subcommand('tl-tunnel stop', 'Stop running tunnels as Ctrl-C would, and wait until they are gone.')
    .argument('[tunnel...]', 'tunnel ids (or a unique start of one), or sandbox names')
    .option('--all', 'every running tunnel of this user')
    .option('--json', 'a JSON array of the stopped tunnels on stdout');
  program.parse(args, { from: 'user' });
  const selectors = program.processedArgs[0] as string[];
  const { all, json } = program.opts();
  if (all === true && selectors.length > 0) throw new TunnelError(ErrorCodes.USAGE, 'Name tunnels or give --all, not both (see tl-tunnel stop --help)');
  if (all !== true && selectors.length === 0) throw new TunnelError(ErrorCodes.USAGE, 'Name the tunnels to stop (ids from tl-tunnel ps, or sandbox names), or give --all');
  const { running, warnings } = await listTunnels();
  for (const w of warnings) say(`warning ${w}`);
  const chosen: RunningTunnel[] = all === true ? running : selectTunnels(running, selectors);
  if (chosen.length === 0) say('No tunnels running');
  const results = await Promise.all(chosen.map(async (t) => ({ t, gone: await stopTunnel(t) })));
  let failed = false;
  for (const { t, gone } of results) {
    const what = `${t.status.id} (${t.status.sandbox ?? 'proxy'}, pid ${t.status.pid})`;
    if (gone) say(`Stopped ${what}`);
    else {
      failed = true;
      say(`error ${what} was asked to stop but still runs; ${killCommand(t.status.pid)} ends it at once`);
    }
  }
  if (json) print(`${JSON.stringify(results.map(({ t, gone }) => ({ id: t.status.id, pid: t.status.pid, sandbox: t.status.sandbox, stopped: gone })))}\n`);
  return failed ? 1 : 0;
}

async function logs(args: string[]): Promise<number> {
  const program = subcommand('tl-tunnel logs', 'Show the log of a tunnel started with --detach.')
    .argument('<tunnel>', 'a tunnel id (or a unique start of one), or a sandbox name')
    .option('-f, --follow', 'keep printing what the tunnel writes, until it stops (or Ctrl-C)');
  program.parse(args, { from: 'user' });
  return followLog(program.processedArgs[0] as string, program.opts().follow === true);
}

/** Runs `tl-tunnel ps|stop|logs ...` and exits with the code of the exit-code table. */
export async function lifecycleMain(command: string, args: string[]): Promise<void> {
  guardStdStreams();
  let code: number;
  try {
    code = command === 'ps' ? await ps(args) : command === 'stop' ? await stop(args) : await logs(args);
  } catch (err) {
    if (err instanceof CommanderError) {
      code = err.exitCode === 0 ? 0 : 2;
      const message = err.message.replace(/^error: /, '').replace(/\n[\s\S]*/, '');
      if (code !== 0) say(`error ${message.charAt(0).toUpperCase()}${message.slice(1)} (see tl-tunnel ${command} --help)`);
    } else {
      const error = isTunnelError(err) ? err : new TunnelError(ErrorCodes.INTERNAL, `Unexpected error: ${(err as Error)?.message ?? String(err)}`);
      say(`error ${error.message}`);
      code = exitCodeFor(error.code);
    }
  }
  process.exitCode = code;
}
