import { COMMAND_WORDS, SHELLS, quote, type CommandSpec, type OptionSpec } from './spec.js';

function optionLine(command: string, o: OptionSpec): string {
  const parts = ['complete', '-c', command];
  if (o.short) parts.push('-s', o.short.slice(1));
  parts.push('-l', o.long.slice(2));
  if (o.values === 'files') parts.push('-r', '-F');
  else if (o.values !== undefined && !o.optional) parts.push('-x');
  if (o.values !== undefined && o.values !== 'files' && o.values.length > 0) parts.push('-a', quote(o.values.join(' ')));
  parts.push('-d', quote(o.description.replace(/\s+/g, ' ')));
  return parts.join(' ');
}

function lines(spec: CommandSpec): string[] {
  const c = spec.name;
  const out = [`complete -c ${c} -f`, ...spec.options.map((o) => optionLine(c, o))];
  if (spec.firstWords.length > 0) {
    for (const word of spec.firstWords) {
      out.push(`complete -c ${c} -n 'test (count (commandline -opc)) -eq 1' -a ${word} -d ${quote(COMMAND_WORDS[word]?.description ?? '')}`);
      for (const flag of COMMAND_WORDS[word]?.flags ?? []) {
        const option = flag.startsWith('--') ? `-l ${flag.slice(2)}` : `-s ${flag.slice(1)}`;
        out.push(`complete -c ${c} -n 'test (count (commandline -opc)) -ge 2; and test (commandline -opc)[2] = ${word}' ${option}`);
      }
    }
    out.push(`complete -c ${c} -n 'test (count (commandline -opc)) -eq 2; and test (commandline -opc)[2] = completion' -a ${quote(SHELLS.join(' '))}`);
  }
  return out;
}

export function fishScript(specs: CommandSpec[]): string {
  return `# fish completion for ${specs.map((s) => s.name).join(' and ')}
# Install: tl-tunnel completion fish > ~/.config/fish/completions/tl-tunnel.fish
# and, for tl-tunnel-server (fish loads a file per command name):
# ln -sf tl-tunnel.fish ~/.config/fish/completions/tl-tunnel-server.fish
${specs.flatMap(lines).join('\n')}
`;
}
