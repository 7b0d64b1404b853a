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
export { openProxy } from './proxy/proxy-server.js';
export type { ProxyOptions, ProxyHandle, ProxyAddress } from './proxy/proxy-server.js';
export { accessDeniedReason } from './client/bind-checks.js';
export { forwardStream } from './client/forward-stream.js';
export type { StreamTunnelOptions, StreamTunnelResult } from './client/forward-stream.js';
export type { TunnelOptions } from './client/options.js';
export type { RetryInfo } from './client/connect.js';
export { createTunnelServer } from './server/tunnel-server.js';
export type { TunnelServerOptions, TunnelServerHandle, TunnelServerEvents, ServerTunnelEnd } from './server/tunnel-server.js';
export { checkSandboxRecords } from './server/control-plane.js';
export type { SandboxRecordInput } from './server/control-plane.js';
export { parsePortSpec, parsePortSpecs, formatPortSpec, parseBindAddress } from './config/port-spec.js';
export type { PortMapping } from './config/port-spec.js';
export { parseSandboxName } from './config/sandbox-name.js';
export { formatHostPort } from './config/host-port.js';
export { resolveProxyTarget, tunnelUrl, isLoopbackHost, TUNNEL_PATH } from './config/proxy-url.js';
export type { ProxyTarget } from './config/proxy-url.js';
export type { Credentials } from './config/credentials.js';
export { resolveCredentials, checkResolvedCredentials, credentialsFilePath, DEFAULT_API_URL } from './config/credential-sources.js';
export type { CredentialInputs, ResolvedCredentials, CredentialSourceNames } from './config/credential-sources.js';
export { setEnvCommand, killCommand } from './config/shell-syntax.js';
export { normaliseApiUrl } from './config/stored-credentials.js';
export { resolveSandbox, lookupBaseFor, lookupOptionsOf, DEFAULT_SANDBOX_WAIT_MS } from './sandbox/resolve.js';
export type { ResolveSandboxOptions, ResolvedSandbox, SandboxStatusEvent, LookupSettings } from './sandbox/resolve.js';
export { createSandboxResolver } from './sandbox/cache.js';
export type { SandboxResolver } from './sandbox/cache.js';
export { deriveLookupBase, isLocalApiUrl, DEFAULT_LOOKUP_BASE, LOCAL_PROXY_URL } from './sandbox/lookup-base.js';
export { TunnelError, ErrorCodes, isTunnelError, redact, redactStrict, registerSecret, sanitizeText, capText, quoteInput } from './errors.js';
export type { ErrorCode } from './errors.js';
export { VERSION } from './version.js';
export { openControlEndpoint } from './control/endpoint.js';
export type { ControlEndpointOptions, ControlEndpointHandle } from './control/endpoint.js';
export { listTunnels, selectTunnels, stopTunnel, processAlive } from './control/registry.js';
export type { RunningTunnel, TunnelListing } from './control/registry.js';
export { controlDirectory, ensureControlDirectory } from './control/directory.js';
export { newTunnelId } from './control/protocol.js';
export type { TunnelStatus, ForwardInfo } from './control/protocol.js';
