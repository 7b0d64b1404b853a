import { randomBytes } from 'node:crypto';

/**
 * The control protocol between `tl-tunnel ps|stop` and a running tl-tunnel: one JSON line each way
 * on the tunnel's own endpoint, then the connection closes. Internal and versioned: a client sends
 * `v`, and a tunnel that speaks another version says so instead of guessing. It never carries the
 * API key: only the entry's token, which proves the caller could read this user's private directory.
 */
export const CONTROL_VERSION = 1;

/** A request line is tiny; anything longer is not one of ours. */
export const MAX_CONTROL_LINE = 4096;

export type ControlRequest = { v: number; token: string; op: 'status' | 'stop' };

export interface ForwardInfo {
  /** `port` for a port mapping, `proxy` for the -D listener. */
  kind: 'port' | 'proxy';
  address: string;
  port: number;
  /** The sandbox port (port mappings only). */
  remotePort?: number;
}

/** What a running tunnel says about itself. */
export interface TunnelStatus {
  id: string;
  pid: number;
  /** The sandbox as given on the command line (absent for -D without one). */
  sandbox?: string;
  forwards: ForwardInfo[];
  /** ISO time the tunnel started listening. */
  startedAt: string;
  detached: boolean;
  /** The detached tunnel's log file. */
  log?: string;
  connections: number;
  active: number;
  bytesSent: number;
  bytesReceived: number;
  lastError?: { code: string; message: string; time: string };
}

export type ControlResponse = { v: number; ok: true; status: TunnelStatus; stopping?: boolean } | { v: number; ok: false; error: string };

/** What a tunnel writes into the control directory so that `ps` can find it. */
export interface TunnelEntry {
  v: number;
  id: string;
  pid: number;
  /** A Unix socket path, or a Windows named pipe. */
  endpoint: string;
  token: string;
  sandbox?: string;
  detached: boolean;
  log?: string;
  startedAt: string;
}

/**
 * A short id a person can type: 8 characters, a letter first (so it never reads as a port spec),
 * no look-alikes (0/o, 1/l).
 */
export function newTunnelId(): string {
  const letters = 'abcdefghijkmnpqrstuvwxyz';
  const alphabet = `${letters}23456789`;
  const bytes = randomBytes(8);
  let id = letters[(bytes[0] as number) % letters.length] as string;
  for (let i = 1; i < 8; i++) id += alphabet[(bytes[i] as number) % alphabet.length];
  return id;
}

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Parses one line as JSON, or undefined when it is not an object. */
export function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
