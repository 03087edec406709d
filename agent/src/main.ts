// g2c-agent command line: parse and validate options, then run the agent until it is drained
// (SIGTERM/SIGINT, exit 0) or the relay revokes its token (exit 3).
import { formatHelp, parseOptions, runMain } from '@g2c/cli';
import { Agent } from './agent.js';
import { agentOptions, buildAgentConfig } from './config.js';
import { startHealthServer } from './health.js';
import { createAgentLogger } from './logger.js';

export { agentOptions };

/** Exit code when the relay says the token is revoked: restarting with the same token cannot help. */
export const EXIT_TOKEN_REVOKED = 3;

runMain(async (argv) => {
  const { values, help } = parseOptions(agentOptions, argv);
  if (help) {
    process.stdout.write(
      formatHelp(
        'usage: g2c-agent --relay URL (--token TOKEN | --token-file FILE) --allow HOST:PORT [--allow ...]',
        agentOptions,
        '\nThe agent dials out to the relay and connects only to the targets --allow lists.\n',
      ),
    );
    return 0;
  }
  const config = buildAgentConfig(values);
  const logger = createAgentLogger(config.logLevel);
  const agent = new Agent(config, { logger });

  let health: Awaited<ReturnType<typeof startHealthServer>> | undefined;
  if (config.healthListen) {
    health = await startHealthServer(config.healthListen, () => agent.state());
    logger.info({ listen: `${config.healthListen.host}:${health.port}` }, 'health endpoint listening');
  }
  logger.info(
    {
      relay: config.relay,
      proxy: config.proxy?.display,
      allow: config.allowlist.entries.map((e) => e.text),
      keepaliveIntervalMs: config.keepaliveIntervalMs,
      keepaliveTimeoutMs: config.keepaliveTimeoutMs,
    },
    'g2c-agent starting',
  );

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    void agent.drain();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const reason = await agent.run();
  await health?.close();
  logger.flush();
  return reason === 'revoked' ? EXIT_TOKEN_REVOKED : 0;
});
