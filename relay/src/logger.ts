// The relay's logger: pino JSON lines on stdout, with every place a secret could sit redacted
// (authorization headers, tokens, passwords, org/user secrets), wherever it is nested.
import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger } from 'pino';

/** Paths pino censors; `*.x` covers one level of nesting, the explicit ones the usual places. */
export const REDACT_PATHS = [
  'authorization',
  'token',
  'password',
  'secret',
  'userSecret',
  'organizationSecret',
  'masterKey',
  '*.authorization',
  '*.Authorization',
  '*.token',
  '*.password',
  '*.secret',
  '*.userSecret',
  '*.organizationSecret',
  '*.masterKey',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.headers.authorization',
  'configuration.password',
  '*.configuration.password',
  '*.configuration["db.ssl.key"]',
];

export function createLogger(
  level: LogLevel,
  destination: NodeJS.WritableStream | pino.DestinationStream = pino.destination({ sync: false }),
): Logger {
  return pino(
    {
      level,
      base: { service: 'g2c-relay' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination as pino.DestinationStream,
  );
}
