import type { Agent } from 'node:http';
import { Connector, type ConnectorTarget, type WarmSettings } from './connector.js';

/**
 * One Connector (and so one warm pool) per proxy base, shared by every sandbox reached through it:
 * a warm socket carries no sandbox until its upgrade names one, so proxy mode reaching a thousand
 * sandboxes through one proxy holds the warm sockets of one pool, not of a thousand.
 */
const shared = new Map<string, { connector: Connector; users: number }>();
const agentIds = new WeakMap<Agent, number>();
let nextAgentId = 1;

function keyOf(target: ConnectorTarget, agent: Agent | undefined, warm: WarmSettings | undefined): string {
  let agentId = 0;
  if (agent !== undefined) {
    agentId = agentIds.get(agent) ?? nextAgentId++;
    agentIds.set(agent, agentId);
  }
  return JSON.stringify([target.secure, target.host, target.port, agentId, warm?.max ?? 0, warm?.idleMs ?? 0]);
}

export interface ConnectorLease {
  readonly connector: Connector;
  /** This user is done; the last one closes the pool. Safe to call more than once. */
  release(): void;
}

export function acquireConnector(target: ConnectorTarget, agent: Agent | undefined, warm: WarmSettings | undefined): ConnectorLease {
  const key = keyOf(target, agent, warm);
  let entry = shared.get(key);
  if (entry === undefined) {
    entry = { connector: new Connector(target, agent, warm), users: 0 };
    shared.set(key, entry);
  }
  entry.users += 1;
  const held = entry;
  let released = false;
  return {
    connector: held.connector,
    release() {
      if (released) return;
      released = true;
      held.users -= 1;
      if (held.users > 0) return;
      held.connector.close();
      if (shared.get(key) === held) shared.delete(key);
    },
  };
}
