// The agent's configuration: the parsed command line (flags, G2C_* environment, --config
// file) turned into one typed, validated object at start-up. A value that cannot work is an
// OptionError naming the option (exit 2); nothing below reads options or the environment.
import { readFileSync } from 'node:fs';
import { OptionError, type OptionSpec, type OptionValues } from '@g2c/cli';
import {
  AGENT_PATH,
  DIAL_TIMEOUT_MS,
  DRAIN_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_TIMEOUT_MS,
} from '@g2c/tunnel';
import { Allowlist, AllowlistError } from './allowlist.js';
import { type ProxyTarget, parseProxyUrl, redactProxyUrl } from './proxy.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const agentOptions: OptionSpec[] = [
  { name: 'relay', type: 'string', value: 'URL', description: 'relay base URL (ws, wss, http or https)' },
  { name: 'token', type: 'string', value: 'TOKEN', description: 'tunnel token (prefer --token-file)' },
  { name: 'token-file', type: 'string', value: 'FILE', description: 'file holding the tunnel token' },
  {
    name: 'allow',
    type: 'list',
    value: 'HOST:PORT',
    description: 'allowed target: host:port, host:*, cidr:port, [ipv6]:port (repeatable; required)',
  },
  {
    name: 'proxy',
    type: 'string',
    value: 'URL',
    description: 'reach the relay through this HTTP proxy (CONNECT): http://[user:pass@]host:port',
  },
  { name: 'ca', type: 'string', value: 'FILE', description: 'PEM CA certificates trusted for wss:// (private CAs)' },
  { name: 'health-listen', type: 'string', value: 'HOST:PORT', description: 'serve the agent state as JSON here' },
  {
    name: 'keepalive-interval',
    type: 'duration',
    default: KEEPALIVE_INTERVAL_MS,
    description: 'ping the relay this often',
  },
  {
    name: 'keepalive-timeout',
    type: 'duration',
    default: KEEPALIVE_TIMEOUT_MS,
    description: 'relay dead after this long without an answer',
  },
  {
    name: 'drain-timeout',
    type: 'duration',
    default: DRAIN_TIMEOUT_MS,
    description: 'on SIGTERM, cut streams still open after this',
  },
  { name: 'dial-timeout', type: 'duration', default: DIAL_TIMEOUT_MS, description: 'TCP connect timeout to a target' },
  {
    name: 'log-level',
    type: 'string',
    default: 'info',
    value: 'LEVEL',
    description: 'trace, debug, info, warn or error',
  },
];

export interface AgentConfig {
  /** Full WebSocket URL of the agent endpoint (`<relay>/agent/v1/connect`). */
  connectUrl: string;
  /** The relay base URL as given (for logs and health). */
  relay: string;
  /** The tunnel token. Never logged. */
  token: string;
  /** Where the token came from, re-read before every connection attempt (rotation without restart). */
  tokenFile?: string;
  allowlist: Allowlist;
  /** Extra CA certificates (PEM) trusted for wss://, added to the public roots. */
  ca?: string;
  /** HTTP proxy to reach the relay through (CONNECT), and its URL without password for logs. */
  proxy?: ProxyTarget & { display: string };
  /** Where to serve health JSON; undefined = no health endpoint. */
  healthListen?: { host: string; port: number };
  /** Ping the relay this often (default 10 s). */
  keepaliveIntervalMs: number;
  /** Relay dead after this long without a pong (default 25 s). */
  keepaliveTimeoutMs: number;
  /** On SIGTERM, streams still open after this are cut (default 30 s). */
  drainTimeoutMs: number;
  /** TCP connect timeout to a target (default 10 s). */
  dialTimeoutMs: number;
  logLevel: LogLevel;
  /** Reconnect backoff: first delay bound, cap, and how long a session must live to reset it. */
  backoff: { baseMs: number; capMs: number; resetAfterMs: number };
}

/** `host:port` or `[v6]:port`. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/** http(s) maps to ws(s); the agent path is appended to whatever path the base has. */
export function connectUrlOf(relay: string): string {
  let url: URL;
  try {
    url = new URL(relay);
  } catch {
    throw new OptionError('relay', `not a URL: ${JSON.stringify(relay)} (e.g. wss://relay.example.com)`);
  }
  const scheme = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }[url.protocol];
  if (!scheme)
    throw new OptionError('relay', `scheme ${url.protocol} not supported: use wss://, ws://, https:// or http://`);
  if (url.username || url.password) throw new OptionError('relay', 'no credentials in the URL: use --token-file');
  if (url.search || url.hash) throw new OptionError('relay', 'the relay URL takes no query or fragment');
  url.protocol = scheme;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${AGENT_PATH}`;
  return url.toString();
}

export function buildAgentConfig(
  values: OptionValues,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): AgentConfig {
  const relay = values.relay as string | undefined;
  if (!relay) throw new OptionError('relay', 'required: the relay URL, e.g. --relay wss://relay.example.com');
  const connectUrl = connectUrlOf(relay);

  let token = values.token as string | undefined;
  const tokenFile = values['token-file'] as string | undefined;
  if (token && tokenFile) throw new OptionError('token-file', 'give --token or --token-file, not both');
  if (tokenFile) {
    try {
      token = readFile(tokenFile).trim();
    } catch (err) {
      throw new OptionError('token-file', `cannot read ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (!token) throw new OptionError('token-file', `${tokenFile} is empty`);
  }
  if (!token) throw new OptionError('token', 'required: --token TOKEN or --token-file FILE (or G2C_TOKEN)');
  if (/\s/.test(token)) throw new OptionError(tokenFile ? 'token-file' : 'token', 'the token contains white space');

  const allow = (values.allow as string[] | undefined) ?? [];
  if (allow.length === 0) {
    throw new OptionError(
      'allow',
      'required: at least one allowed target, e.g. --allow db.internal:5432 (the agent denies everything else)',
    );
  }
  let allowlist: Allowlist;
  try {
    allowlist = new Allowlist(allow);
  } catch (err) {
    if (err instanceof AllowlistError) throw new OptionError('allow', err.message);
    throw err;
  }

  let ca: string | undefined;
  const caFile = values.ca as string | undefined;
  if (caFile) {
    try {
      ca = readFile(caFile);
    } catch (err) {
      throw new OptionError('ca', `cannot read ${caFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new OptionError('ca', `${caFile} holds no PEM certificate`);
  }

  let proxy: AgentConfig['proxy'];
  if (values.proxy) {
    const parsed = parseProxyUrl(values.proxy as string);
    if (!parsed) throw new OptionError('proxy', 'expected http://[user:password@]host:port');
    proxy = { ...parsed, display: redactProxyUrl(values.proxy as string) };
  }

  let healthListen: AgentConfig['healthListen'];
  if (values['health-listen']) {
    healthListen = parseHostPort(values['health-listen'] as string);
    if (!healthListen) throw new OptionError('health-listen', 'expected HOST:PORT, e.g. 127.0.0.1:9101');
  }

  const keepaliveIntervalMs = values['keepalive-interval'] as number;
  const keepaliveTimeoutMs = values['keepalive-timeout'] as number;
  if (keepaliveIntervalMs <= 0) throw new OptionError('keepalive-interval', 'must be more than 0');
  if (keepaliveTimeoutMs <= 0) throw new OptionError('keepalive-timeout', 'must be more than 0');
  const dialTimeoutMs = values['dial-timeout'] as number;
  if (dialTimeoutMs <= 0) throw new OptionError('dial-timeout', 'must be more than 0');

  const logLevel = values['log-level'] as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new OptionError('log-level', `expected one of ${LOG_LEVELS.join(', ')}`);

  return {
    connectUrl,
    relay,
    token,
    tokenFile,
    allowlist,
    ca,
    healthListen,
    proxy,
    keepaliveIntervalMs,
    keepaliveTimeoutMs,
    drainTimeoutMs: values['drain-timeout'] as number,
    dialTimeoutMs,
    logLevel,
    backoff: { baseMs: 500, capMs: 30_000, resetAfterMs: 60_000 },
  };
}
