import { capText, type TunnelStatus } from '../../index.js';
import { terminalLine } from '../sanitize.js';
import { formatBytes, hostPort } from '../format.js';

/** 3725 s -> "1h02m", 75 s -> "1m15s", 9 s -> "9s": the width of `ps`'s UPTIME column stays small. */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/** One cell for all forwards; both loopbacks on one port read as `localhost`, as the user typed it. */
function forwards(t: TunnelStatus): string {
  const cells = t.forwards.map((f) => {
    const local = hostPort(f.address, f.port);
    return f.kind === 'proxy' ? `proxy ${local}` : `${local}->${f.remotePort}`;
  });
  const shown = cells.map((cell) => cell.replace(/^127\.0\.0\.1:/, 'localhost:'));
  return shown.filter((cell, i) => !(cells[i]?.startsWith('[::1]:') && shown.includes(cell.replace(/^\[::1\]:/, 'localhost:')))).join(' ');
}

/** `tl-tunnel ps`'s table, one tunnel a row; every cell is cleaned for the terminal. */
export function formatTable(tunnels: readonly TunnelStatus[], now = Date.now()): string {
  const header = ['ID', 'PID', 'SANDBOX', 'FORWARDS', 'UPTIME', 'CONNS', 'SENT', 'RECEIVED', 'LAST ERROR'];
  const rows = tunnels.map((t) => [
    `${t.id}${t.detached ? '' : '*'}`,
    String(t.pid),
    t.sandbox ?? '-',
    forwards(t),
    formatUptime(now - Date.parse(t.startedAt)),
    String(t.connections),
    formatBytes(t.bytesSent),
    formatBytes(t.bytesReceived),
    t.lastError ? capText(`${t.lastError.code.replace('TL_ERR_', '')}: ${t.lastError.message}`, 60) : '-',
  ].map((cell) => terminalLine(cell)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  const foreground = tunnels.some((t) => !t.detached) ? '* runs in a terminal (not detached)\n' : '';
  return `${[header, ...rows].map(line).join('\n')}\n${foreground}`;
}
