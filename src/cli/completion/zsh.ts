import { SHELLS, quote, type CommandSpec, type OptionSpec } from './spec.js';

// _arguments reads ':' as a field separator and ']' as the end of a description.
const esc = (text: string): string => text.replace(/([\\:[\]])/g, '\\$1');

function optionSpecs(o: OptionSpec): string[] {
  const description = esc(o.description.replace(/\s+/g, ' '));
  const action = o.values === undefined ? '' : o.values === 'files' ? ':file:_files' : `:value:(${o.values.map(esc).join(' ')})`;
  // An optional value (`--wait [seconds]`) takes two colons.
  const valuePart = o.optional ? `:${action}` : action;
  return [o.long, ...(o.short ? [o.short] : [])].map((flag) => quote(`${flag}[${description}]${valuePart}`));
}

function fn(spec: CommandSpec): string {
  const name = `_${spec.name.replace(/-/g, '_')}`;
  const specs = spec.options.flatMap(optionSpecs);
  const positional = spec.firstWords.length === 0 ? '' : ` \\
    '*::argument:->args'
  if [[ $state == args ]]; then
    if (( CURRENT == 1 )); then
      compadd -- ${spec.firstWords.join(' ')}
    elif (( CURRENT == 2 )) && [[ $words[1] == completion ]]; then
      compadd -- ${SHELLS.join(' ')}
    fi
  fi`;
  return `${name}() {
  local state
  _arguments -s -S \\
    ${specs.join(' \\\n    ')}${positional}
}`;
}

export function zshScript(specs: CommandSpec[]): string {
  return `#compdef ${specs.map((s) => s.name).join(' ')}
# zsh completion for ${specs.map((s) => s.name).join(' and ')}
# Install: tl-tunnel completion zsh > ~/.zfunc/_tl-tunnel, with fpath=(~/.zfunc $fpath) before compinit
#      or: echo 'source <(tl-tunnel completion zsh)' >> ~/.zshrc   (after compinit)
${specs.map(fn).join('\n\n')}

_tl_tunnel_dispatch() {
  case $service in
${specs.map((s) => `    ${s.name}) _${s.name.replace(/-/g, '_')} "$@" ;;`).join('\n')}
  esac
}

# Autoloaded from a file named _tl-tunnel in $fpath: complete now; sourced: register.
if [[ $funcstack[1] == _tl-tunnel ]]; then
  _tl_tunnel_dispatch "$@"
else
  compdef _tl_tunnel_dispatch ${specs.map((s) => s.name).join(' ')}
fi
`;
}
