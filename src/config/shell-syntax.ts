/**
 * Commands quoted in messages, in the shell the user most likely has: PowerShell on Windows (cmd.exe
 * users read it well enough; `export` would mean nothing to either), a POSIX shell elsewhere.
 */
export function setEnvCommand(name: string, value: string, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? `$env:${name}='${value.replace(/'/g, "''")}'` : `export ${name}=${value}`;
}

/** The example that ends every "No API key" message. */
export function apiKeyExample(platform: NodeJS.Platform = process.platform): string {
  return `(e.g. ${setEnvCommand('TENSORLAKE_API_KEY', 'tl_apiKey_...', platform)})`;
}

/** How to end a process at once, given its pid. */
export function killCommand(pid: number, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? `taskkill /F /PID ${pid}` : `kill ${pid}`;
}
