// Request loggers of the resource routes, made only when something is logged. fastify gives
// every request a pino child bound to its request id; with the relay's redaction paths that
// child costs a few microseconds per call, while a successful resource call at the usual
// levels logs nothing at all. This stand-in checks the level and builds the very same child
// on first use, so every line that is written is unchanged.
import type { FastifyBaseLogger } from 'fastify';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type Bindings = Record<string, unknown>;
type LevelLogger = FastifyBaseLogger & { isLevelEnabled(level: string): boolean };

class LazyChildLogger {
  private made: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: LevelLogger,
    private readonly bindings: Bindings,
    private readonly options: object,
  ) {}

  private real(): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings, this.options);
    return this.made;
  }

  private write(level: Level, args: unknown[]): void {
    if (this.made || this.parent.isLevelEnabled(level)) {
      (this.real()[level] as (...a: unknown[]) => void)(...args);
    }
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return ((this.made ?? this.parent) as LevelLogger).isLevelEnabled(level);
  }

  child(bindings: Bindings, options?: object): FastifyBaseLogger {
    return this.real().child(bindings, options);
  }

  silent(): void {}
  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
}

/**
 * A fastify child logger factory (`setChildLoggerFactory`) whose children are built lazily.
 * A route with its own log level, or a logger that cannot say which levels it writes, gets its
 * child at once.
 */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: object): FastifyBaseLogger {
  const levelLogger = logger as LevelLogger;
  if ((options as { level?: string }).level || typeof levelLogger.isLevelEnabled !== 'function') {
    return logger.child(bindings, options);
  }
  return new LazyChildLogger(levelLogger, bindings, options) as unknown as FastifyBaseLogger;
}
