import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Why a project config file found by the upward search must not be used, or undefined when it may.
 * Like git after CVE-2022-24765 (an uncontrolled search path): a `.tensorlake/config.toml` in a
 * directory another user owns or may write to (a cloned repository unpacked by someone else, a
 * shared directory such as /tmp) could point the user's own key at any host. The file, its
 * `.tensorlake` directory and the directory holding that must all be the user's and writable by
 * nobody else. Windows has neither owners by uid nor mode bits here: the check is POSIX only.
 */
export function untrustedProjectConfig(file: string, platform: NodeJS.Platform = process.platform, uid: number | undefined = process.getuid?.()): string | undefined {
  if (platform === 'win32' || uid === undefined) return undefined;
  const dotDir = dirname(file);
  for (const path of [file, dotDir, dirname(dotDir)]) {
    let stats;
    try {
      stats = lstatSync(path);
    } catch {
      return undefined;
    }
    if (stats.uid !== uid) return `${path} belongs to another user (uid ${stats.uid})`;
    if ((stats.mode & 0o022) !== 0) return `${path} can be written by other users (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')})`;
  }
  return undefined;
}
