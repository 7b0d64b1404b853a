// The public library API. The CLI (src/cli/) uses only what is exported here.
export { openTunnel } from './client/open-tunnel.js';
export type {
  TunnelHandle,
  BoundAddress,
  ConnectionInfo,
  ConnectionClose,
  TunnelWarning,
  TunnelStats,
  TunnelEvents,
} from './client/open-tunnel.js';
export { forwardStream } from './client/forward-stream.js';
export type { StreamTunnelOptions, StreamTunnelResult } from './client/forward-stream.js';
export type { TunnelOptions } from './client/options.js';
export type { RetryInfo } from './client/connect.js';
export { createTunnelServer } from './server/tunnel-server.js';
export type { TunnelServerOptions, TunnelServerHandle, TunnelServerEvents, ServerTunnelEnd } from './server/tunnel-server.js';
export { parsePortSpec, parsePortSpecs, formatPortSpec, parseBindAddress } from './config/port-spec.js';
export type { PortMapping } from './config/port-spec.js';
export { parseSandboxName } from './config/sandbox-name.js';
export { resolveProxyTarget, tunnelUrl, isLoopbackHost, TUNNEL_PATH } from './config/proxy-url.js';
export type { ProxyTarget } from './config/proxy-url.js';
export type { Credentials } from './config/credentials.js';
export { resolveCredentials, credentialsFilePath, DEFAULT_API_URL } from './config/credential-sources.js';
export type { CredentialInputs, ResolvedCredentials } from './config/credential-sources.js';
export { TunnelError, ErrorCodes, isTunnelError, redact, redactStrict, registerSecret, sanitizeText, capText, quoteInput } from './errors.js';
export type { ErrorCode } from './errors.js';
export { VERSION } from './version.js';
