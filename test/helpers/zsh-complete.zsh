# Types "$2<TAB>" into an interactive zsh (in a pseudo-terminal) that sourced the completion script
# $1, and prints the first batch of matches the completion offered, separated by "|".
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT=''; autoload -U compinit; compinit -u -d ./.zcompdump; source ${(q)1}"
zpty -w z 'compadd() { local -a h; builtin compadd -O h "$@"; (( $#h )) && print -r -- "<M>${(j:|:)h}</M>"; builtin compadd "$@" }'
zpty -n -w z "$2"$'\t'
out='' line=''
for i in {1..300}; do
  zpty -r -t z line && out+=$line || sleep 0.05
  [[ $out =~ '<M>[^$]*</M>' ]] && break
done
zpty -d z
[[ $out =~ '<M>([^$<]*)</M>' ]] && print -r -- $match[1]
