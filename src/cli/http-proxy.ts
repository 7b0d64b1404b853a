import type { Agent } from 'node:http';
import { registerSecret, resolveProxyTarget, type TunnelOptions } from '../index.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';
import { chooseHttpProxy } from './proxy-env.js';

/**
 * The HTTP CONNECT proxy agent for requests to one origin, when --proxy or the environment names
 * one. Credentials in the proxy URL are moved into a Proxy-Authorization header and registered as
 * secrets, so neither our messages nor the agent's own debug log can show them.
 */
async function agentFor(config: CliConfig, target: { secure: boolean; hostname: string; port: number }, out: Output, purpose: string): Promise<Agent | undefined> {
  const choice = chooseHttpProxy(target, config.proxy);
  if (!choice) return undefined;
  const { url } = choice;
  const headers: Record<string, string> = {};
  if (url.username !== '' || url.password !== '') {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    const basic = Buffer.from(`${user}:${password}`).toString('base64');
    for (const secret of [url.password, password, basic]) registerSecret(secret);
    // A user name is a secret only when it is a token (//TOKEN@proxy); a short one such as "proxy"
    // or "user" would otherwise be hidden from every message that says "proxy" or "user".
    for (const name of [url.username, user]) if (name.length >= 8) registerSecret(name);
    headers['proxy-authorization'] = `Basic ${basic}`;
  }
  const bare = new URL(`${url.protocol}//${url.host}`);
  out.verbose(`HTTP proxy ${bare.origin} for ${purpose} (from ${choice.source})${headers['proxy-authorization'] ? ' with credentials' : ''}`);
  // Loaded only when a proxy is in use: most runs never pay for it.
  const { HttpsProxyAgent } = await import('https-proxy-agent');
  return new HttpsProxyAgent(bare, { headers, keepAlive: false });
}

/** The agent for the tunnel upgrades to the proxy `options` resolve to. */
export async function proxyAgentFor(config: CliConfig, options: Omit<TunnelOptions, 'ports'>, out: Output): Promise<Agent | undefined> {
  const resolved = options.resolvedSandbox;
  const target = resolveProxyTarget(resolved?.id ?? options.sandbox, resolved?.proxyUrl ?? options.proxyUrl ?? options.fallbackProxyUrl, options.allowInsecure);
  const origin = new URL(target.origin);
  return agentFor(config, { secure: target.secure, hostname: target.hostname, port: Number(origin.port) || (target.secure ? 443 : 80) }, out, 'the tunnels');
}

/** The agent for the sandbox lookups at `base`. */
export function lookupAgentFor(config: CliConfig, base: string, out: Output): Promise<Agent | undefined> {
  const url = new URL(base);
  const secure = url.protocol === 'https:';
  return agentFor(config, { secure, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) || (secure ? 443 : 80) }, out, 'the sandbox lookup');
}
