/** "host:port", with an IPv6 address in brackets ("[::1]:5432"), for messages and events. */
export function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
