import type { Agent } from 'node:http';
import type { TunnelOptions } from '../index.js';
import type { CliConfig } from './program.js';
import type { Output } from './output.js';

/** The HTTP CONNECT proxy agent for the upgrades, when one applies (issue: HTTP proxies). */
export async function proxyAgentFor(_config: CliConfig, _options: Omit<TunnelOptions, 'ports'>, _out: Output): Promise<Agent | undefined> {
  return undefined;
}
