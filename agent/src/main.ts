// g2c-agent command line: parse options, then run the agent.
import { formatHelp, type OptionSpec, parseOptions, runMain } from '@g2c/cli';

export const agentOptions: OptionSpec[] = [
  { name: 'relay', type: 'string', value: 'URL', description: 'relay base URL (ws, wss, http or https)' },
  { name: 'token', type: 'string', value: 'TOKEN', description: 'tunnel token' },
  { name: 'token-file', type: 'string', value: 'FILE', description: 'file holding the tunnel token' },
  {
    name: 'allow',
    type: 'list',
    value: 'HOST:PORT',
    description: 'allowed target: host:port, host:*, cidr:port (repeatable)',
  },
  { name: 'ca', type: 'string', value: 'FILE', description: 'PEM CA bundle trusted for wss:// (private CAs)' },
  { name: 'health-listen', type: 'string', value: 'HOST:PORT', description: 'serve the agent state as JSON here' },
  { name: 'keepalive-interval', type: 'duration', default: 10_000, description: 'ping the relay this often' },
  {
    name: 'keepalive-timeout',
    type: 'duration',
    default: 25_000,
    description: 'relay dead after this long without an answer',
  },
  {
    name: 'drain-timeout',
    type: 'duration',
    default: 30_000,
    description: 'on SIGTERM, cut streams still open after this',
  },
  { name: 'log-level', type: 'string', default: 'info', description: 'trace, debug, info, warn or error' },
];

runMain(async (argv) => {
  const { help } = parseOptions(agentOptions, argv);
  if (help) {
    process.stdout.write(
      formatHelp(
        'usage: g2c-agent --relay URL (--token TOKEN | --token-file FILE) --allow HOST:PORT [--allow ...]',
        agentOptions,
      ),
    );
    return 0;
  }
  throw new Error('g2c-agent is not implemented yet');
});
