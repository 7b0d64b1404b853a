import type { Command } from 'commander';

/** What a completion script needs to know about one option. */
export interface OptionSpec {
  long: string;
  short?: string;
  description: string;
  /** undefined: a flag; [] a value with nothing to suggest; 'files': a path; else the words to offer. */
  values?: readonly string[] | 'files';
  /** The value may be left out (`--wait [seconds]`). */
  optional?: boolean;
}

export interface CommandSpec {
  name: string;
  options: OptionSpec[];
  /** Words offered as the first argument (`completion` for tl-tunnel). */
  firstWords: readonly string[];
}

export const SHELLS = ['bash', 'zsh', 'fish', 'powershell'] as const;

/** tl-tunnel's command words, what each does, and the options each takes. */
export const COMMAND_WORDS: Record<string, { description: string; flags: readonly string[] }> = {
  completion: { description: 'print a shell completion script', flags: [] },
  ps: { description: 'list the running tunnels', flags: ['--json'] },
  stop: { description: 'stop running tunnels', flags: ['--all', '--json'] },
  logs: { description: "show a detached tunnel's log", flags: ['-f', '--follow'] },
};
export type Shell = (typeof SHELLS)[number];

// Values worth offering; everything else that takes a value (keys, numbers, ports) offers nothing.
const VALUE_HINTS: Record<string, readonly string[] | 'files'> = {
  '--api-url': ['https://api.tensorlake.ai'],
  '--proxy-url': ['https://', 'http://127.0.0.1:9443'],
  '--proxy': ['http://'],
  '--address': ['127.0.0.1', '::1', '0.0.0.0', '::'],
  '--host': ['127.0.0.1', '::1', '0.0.0.0', '::'],
  '--cert': 'files',
  '--key': 'files',
};

/** Reads the options from the real parser, so the scripts never drift from --help. */
export function commandSpec(program: Command, firstWords: readonly string[] = []): CommandSpec {
  const options: OptionSpec[] = [];
  for (const o of program.options) {
    if (o.long === undefined || o.hidden) continue;
    const takesValue = o.required || o.optional;
    options.push({
      long: o.long,
      ...(o.short ? { short: o.short } : {}),
      description: o.description,
      ...(takesValue ? { values: VALUE_HINTS[o.long] ?? [] } : {}),
      ...(o.optional ? { optional: true } : {}),
    });
  }
  options.push({ long: '--help', short: '-h', description: 'show the help' });
  return { name: program.name(), options, firstWords };
}

/** A shell-safe single-quoted word. */
export function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
