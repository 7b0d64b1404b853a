/**
 * Whether the terminal is likely to show Unicode, as the well-known is-unicode-supported decides:
 * everywhere but the Linux console (TERM=linux); on Windows only in terminals known to (Windows
 * Terminal, VS Code, ConEmu's Cmder, Terminus, JetBrains, Alacritty, rxvt) or on CI. The classic
 * Windows console host shows braille and check marks as boxes or question marks.
 */
export function isUnicodeSupported(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'win32') return env.TERM !== 'linux';
  return (
    Boolean(env.CI) ||
    Boolean(env.WT_SESSION) ||
    Boolean(env.TERMINUS_SUBLIME) ||
    env.ConEmuTask === '{cmd::Cmder}' ||
    env.TERM_PROGRAM === 'Terminus-Sublime' ||
    env.TERM_PROGRAM === 'vscode' ||
    env.TERM === 'xterm-256color' ||
    env.TERM === 'alacritty' ||
    env.TERM === 'rxvt-unicode' ||
    env.TERM === 'rxvt-unicode-256color' ||
    env.TERMINAL_EMULATOR === 'JetBrains-JediTerm'
  );
}

/** The symbols the CLI draws on the terminal. */
export interface Glyphs {
  spinner: readonly string[];
  ok: string;
  fail: string;
  up: string;
  down: string;
  separator: string;
  ellipsis: string;
  /** Text from elsewhere (messages end in "…"), made safe for this terminal. */
  text(line: string): string;
}

const UNICODE: Glyphs = {
  spinner: ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'],
  ok: '✔',
  fail: '✖',
  up: '↑',
  down: '↓',
  separator: ' · ',
  ellipsis: '…',
  text: (line) => line,
};

const ASCII: Glyphs = {
  spinner: ['-', '\\', '|', '/'],
  ok: '+',
  fail: 'x',
  up: 'up',
  down: 'down',
  separator: ' | ',
  ellipsis: '...',
  text: (line) => line.replace(/…/g, '...'),
};

export function glyphsFor(unicode: boolean): Glyphs {
  return unicode ? UNICODE : ASCII;
}
