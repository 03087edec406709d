// @g2c/agent: the agent as a library (the g2c-agent command is main.ts).
export { Agent, type AgentDeps, type AgentState, backoffDelay, type StopReason } from './agent.js';
export { type AllowEntry, Allowlist, AllowlistError, parseAllowEntry } from './allowlist.js';
export { type AgentConfig, agentOptions, buildAgentConfig } from './config.js';
export { type DialerOptions, serveStream } from './dialer.js';
export { startHealthServer } from './health.js';
export { ConnectError, connectToRelay } from './relay-connection.js';
