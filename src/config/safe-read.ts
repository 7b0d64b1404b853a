import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** Config and credential files are a few hundred bytes; anything far bigger is not one of them. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

function kind(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a small text file without trusting what it is: a FIFO would block the open (O_NONBLOCK
 * keeps it from doing so), a device or /proc file never ends, a huge file costs memory. Returns
 * undefined when the file does not exist, and pushes one warning naming the file for anything else
 * it refuses.
 */
export function readSmallTextFile(path: string, warnings: string[], what = 'file'): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    warnings.push(`${path} cannot be read (${code ?? 'error'}); ignoring this ${what}`);
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      warnings.push(`${path} is ${kind(stats)}, not a regular file; ignoring this ${what}`);
      return undefined;
    }
    if (stats.size > MAX_CONFIG_BYTES) {
      warnings.push(`${path} is larger than 1 MiB; ignoring this ${what}`);
      return undefined;
    }
    // The size may lie (a file still growing): never read more than the cap.
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > MAX_CONFIG_BYTES) {
        warnings.push(`${path} is larger than 1 MiB; ignoring this ${what}`);
        return undefined;
      }
    }
    return buffer.subarray(0, length).toString('utf8');
  } catch (err) {
    warnings.push(`${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); ignoring this ${what}`);
    return undefined;
  } finally {
    closeSync(fd);
  }
}
