import { lstatSync, mkdirSync, type Stats } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import path from 'node:path';
import { ErrorCodes, TunnelError } from '../errors.js';

/**
 * Where this user's running tunnels keep their control endpoints, entries and logs. Only the user
 * may enter it: anyone who can write there could pose as a tunnel, and anyone who can read an entry
 * could stop one.
 *
 * - `TL_TUNNEL_RUNTIME_DIR`, when set (tests, several setups side by side);
 * - POSIX: `$XDG_RUNTIME_DIR/tl-tunnel` (a per-user tmpfs that systemd creates 0700), else
 *   `<tmpdir>/tl-tunnel-<uid>` (on macOS tmpdir is already per-user), as tmux does;
 * - Windows: `%LOCALAPPDATA%\tl-tunnel`.
 */
export function controlDirectory(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const chosen = env.TL_TUNNEL_RUNTIME_DIR?.trim();
  if (chosen) return path.resolve(chosen);
  if (platform === 'win32') return path.join(env.LOCALAPPDATA?.trim() || path.join(homedir(), 'AppData', 'Local'), 'tl-tunnel');
  const runtime = env.XDG_RUNTIME_DIR?.trim();
  if (runtime && path.isAbsolute(runtime)) return path.join(runtime, 'tl-tunnel');
  return path.join(tmpdir(), `tl-tunnel-${process.getuid?.() ?? 'user'}`);
}

/**
 * Why a path that should be this user's alone is not, or undefined when it is: a link, another
 * owner, or group/other permission bits. Windows has no such bits: there the directory under
 * %LOCALAPPDATA% is private by the profile's ACL, and every request carries the entry's token.
 */
export function notPrivate(stats: Stats, what: 'directory' | 'socket' | 'file'): string | undefined {
  if (stats.isSymbolicLink()) return 'is a symbolic link';
  const rightKind = what === 'directory' ? stats.isDirectory() : what === 'socket' ? stats.isSocket() : stats.isFile();
  if (!rightKind) return `is not a ${what}`;
  if (process.platform === 'win32') return undefined;
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) return `belongs to another user (uid ${stats.uid})`;
  if ((stats.mode & 0o077) !== 0) return `can be used by other users (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** Creates the control directory if needed (0700) and checks it is this user's alone. */
export function ensureControlDirectory(dir: string): string {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw controlError(`Cannot create the tunnel directory ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  checkControlDirectory(dir);
  return dir;
}

/** Throws when the directory exists but is not this user's alone; returns false when it is missing. */
export function checkControlDirectory(dir: string): boolean {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw controlError(`Cannot read the tunnel directory ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  const why = notPrivate(stats, 'directory');
  if (why) throw controlError(`The tunnel directory ${dir} ${why}; it is not trusted. Remove it, or set TL_TUNNEL_RUNTIME_DIR to a directory only you can use`);
  return true;
}

function controlError(message: string, cause?: unknown): TunnelError {
  return new TunnelError(ErrorCodes.CONTROL, message, { cause });
}
