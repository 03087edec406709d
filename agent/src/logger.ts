// The agent's logger: pino JSON lines on stdout; the token never appears (it lives only in
// the Authorization header of the upgrade, and these paths are censored if it ever would).
import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.js';

export function createAgentLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'g2c-agent' },
    redact: {
      paths: [
        'token',
        'authorization',
        '*.token',
        '*.authorization',
        'headers.authorization',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
