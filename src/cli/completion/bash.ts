import { COMMAND_WORDS, SHELLS, quote, type CommandSpec, type OptionSpec } from './spec.js';

function fn(spec: CommandSpec): string {
  const name = `_${spec.name.replace(/-/g, '_')}`;
  const flags = spec.options.flatMap((o) => [o.long, ...(o.short ? [o.short] : [])]);
  const names = (o: OptionSpec): string => [o.long, ...(o.short ? [o.short] : [])].join('|');
  const cases = spec.options
    .filter((o) => o.values !== undefined && o.values.length > 0)
    .map((o) => {
      if (o.values === 'files') return `    ${names(o)}) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;`;
      return `    ${names(o)}) COMPREPLY=($(compgen -W ${quote((o.values ?? []).join(' '))} -- "$cur")) ;;`;
    });
  // A value nobody can guess (a key, a number): offer nothing rather than option names.
  const opaque = spec.options.filter((o) => Array.isArray(o.values) && o.values.length === 0);
  if (opaque.length > 0) cases.push(`    ${opaque.map(names).join('|')}) ;;`);
  const commandFlags = Object.entries(COMMAND_WORDS)
    .filter(([, c]) => c.flags.length > 0)
    .map(([word, c]) => `        ${word}) COMPREPLY=($(compgen -W ${quote(c.flags.join(' '))} -- "$cur")) ;;`)
    .join('\n');
  const flagsFor = spec.firstWords.length === 0
    ? `COMPREPLY=($(compgen -W ${quote(flags.join(' '))} -- "$cur"))`
    : `case \${words[1]:-} in
${commandFlags}
        *) COMPREPLY=($(compgen -W ${quote(flags.join(' '))} -- "$cur")) ;;
        esac`;
  const first = spec.firstWords.length === 0 ? '' : `
      elif ((n == 1)); then
        COMPREPLY=($(compgen -W ${quote(spec.firstWords.join(' '))} -- "$cur"))
      elif ((n == 2)) && [[ \${words[1]} == completion ]]; then
        COMPREPLY=($(compgen -W ${quote(SHELLS.join(' '))} -- "$cur"))`;
  return `${name}() {
  # Whole words from the line itself: bash's own COMP_WORDS splits URLs and IPv6 addresses at ':'.
  local line=\${COMP_LINE:0:COMP_POINT} words cur prev n
  read -ra words <<<"$line"
  if [[ $line == *[[:space:]] ]]; then words+=(""); fi
  n=$((\${#words[@]} - 1))
  cur=\${words[n]}
  prev=\${words[n-1]:-}
  COMPREPLY=()
  case $prev in
${cases.join('\n')}
    *)
      if [[ $cur == -* ]]; then
        ${flagsFor}${first}
      fi
      ;;
  esac
  # bash replaces only the text after the last ':' of the word: hand it just that part.
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local i keep=\${cur%"\${cur##*:}"}
    for i in "\${!COMPREPLY[@]}"; do COMPREPLY[i]=\${COMPREPLY[i]#"$keep"}; done
  fi
}
complete -F ${name} ${spec.name}`;
}

export function bashScript(specs: CommandSpec[]): string {
  return `# bash completion for ${specs.map((s) => s.name).join(' and ')}
# Install: tl-tunnel completion bash > ~/.local/share/bash-completion/completions/tl-tunnel
#      or: echo 'source <(tl-tunnel completion bash)' >> ~/.bashrc
${specs.map(fn).join('\n\n')}
`;
}
