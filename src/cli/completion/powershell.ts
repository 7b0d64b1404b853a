import { COMMAND_WORDS, SHELLS, type CommandSpec, type OptionSpec } from './spec.js';

/** A PowerShell single-quoted string: only ' needs escaping, by doubling it. */
const ps = (text: string): string => `'${text.replace(/'/g, "''")}'`;
const list = (words: readonly string[]): string => `@(${words.map(ps).join(', ')})`;

function names(o: OptionSpec): string[] {
  return [o.long, ...(o.short ? [o.short] : [])];
}

/** One command's table: its flags with their descriptions, the values each option offers, its words. */
function table(spec: CommandSpec): string {
  const flags = spec.options.flatMap((o) => names(o).map((n) => `@{ Name = ${ps(n)}; Tip = ${ps(o.description.replace(/\s+/g, ' '))} }`));
  // 'files': nothing, so PowerShell falls back to paths; [] offers nothing to guess (a key, a number).
  const values = spec.options
    .filter((o) => o.values !== undefined)
    .flatMap((o) => names(o).map((n) => `@{ Name = ${ps(n)}; Values = ${o.values === 'files' ? '$null' : list(o.values as readonly string[])} }`));
  const words = spec.firstWords.map((w) => `${ps(w)} = ${list(COMMAND_WORDS[w]?.flags ?? [])}`);
  return `  ${ps(spec.name)} = @{
    Flags = @(
      ${flags.join(',\n      ')}
    )
    Values = @(
      ${values.join(',\n      ')}
    )
    Words = [ordered]@{${words.length > 0 ? `\n      ${words.join('\n      ')}\n    ` : ''}}
  }`;
}

export function powershellScript(specs: CommandSpec[]): string {
  return `# PowerShell completion for ${specs.map((s) => s.name).join(' and ')}
# Install: tl-tunnel completion powershell | Out-String | Invoke-Expression
#      or: tl-tunnel completion powershell >> $PROFILE
$global:TlTunnelCompletion = @{
${specs.map(table).join('\n')}
}

Register-ArgumentCompleter -Native -CommandName ${specs.map((s) => s.name).join(',')} -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  # tl-tunnel, tl-tunnel.cmd or a full path: the table is found by the bare name.
  $name = [System.IO.Path]::GetFileNameWithoutExtension($commandAst.CommandElements[0].Extent.Text)
  $spec = $global:TlTunnelCompletion[$name]
  if ($null -eq $spec) { return }
  # The words typed before the one being completed.
  $before = @($commandAst.CommandElements | Select-Object -Skip 1 | Where-Object { $_.Extent.EndOffset -lt $cursorPosition } | ForEach-Object { $_.Extent.Text })
  $prev = if ($before.Count -gt 0) { $before[-1] } else { '' }
  $offer = { param($words, $kind) $words | Where-Object { $_ -like "$wordToComplete*" } | ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, $kind, $_) } }
  # Option names match case-sensitively, as the parser does (-d detaches, -D takes a port).
  $takes = @($spec.Values | Where-Object { $_.Name -ceq $prev })
  if ($takes.Count -gt 0) {
    if ($null -ne $takes[0].Values) { & $offer $takes[0].Values 'ParameterValue' }
  } elseif ($wordToComplete -like '-*') {
    $flags = $spec.Flags
    if ($before.Count -gt 0 -and $spec.Words.Contains($before[0])) { $flags = @($spec.Words[$before[0]] | ForEach-Object { @{ Name = $_; Tip = $_ } }) }
    $flags | Where-Object { $_.Name -clike "$wordToComplete*" } | ForEach-Object { [System.Management.Automation.CompletionResult]::new($_.Name, $_.Name, 'ParameterName', $_.Tip) }
  } elseif ($before.Count -eq 0 -and $spec.Words.Count -gt 0) {
    & $offer @($spec.Words.Keys) 'Command'
  } elseif ($before.Count -eq 1 -and $before[0] -eq 'completion') {
    & $offer ${list(SHELLS)} 'ParameterValue'
  }
}
`;
}
