import type { FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../logger.js';
import { lazyChildLogger } from './lazy-logger.js';

function recorder(level: 'info' | 'warn') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line: string) => lines.push(line) } as unknown as NodeJS.WritableStream);
  return { logger: logger as unknown as FastifyBaseLogger, lines };
}

/** A line without its time (two loggers never write in the same millisecond). */
const timeless = (line: string) => {
  const { time: _time, ...rest } = JSON.parse(line);
  return rest;
};

describe('lazyChildLogger', () => {
  it('writes exactly what the eager child writes, bindings and redaction included', () => {
    const lazy = recorder('info');
    const eager = recorder('info');
    const a = lazyChildLogger(lazy.logger, { reqId: 'r-1' }, {});
    const b = eager.logger.child({ reqId: 'r-1' }, {});
    for (const log of [a, b]) {
      log.info({ code: 'not_found', authorization: 'User s, Organization o' }, 'no such row');
      log.debug('not written at info');
      log.error({ err: { message: 'boom' } }, 'request failed');
      log.child({ tunnelId: 't' }).warn('nested');
    }
    expect(lazy.lines.map(timeless)).toEqual(eager.lines.map(timeless));
    expect(lazy.lines).toHaveLength(3);
    expect(lazy.lines[0]).toContain('"reqId":"r-1"');
    expect(lazy.lines[0]).not.toContain('User s');
  });

  it('builds no child while nothing is written, and follows the level', () => {
    const { logger, lines } = recorder('warn');
    let children = 0;
    const counting = Object.create(logger, {
      child: {
        value: (...args: Parameters<FastifyBaseLogger['child']>) => {
          children++;
          return logger.child(...args);
        },
      },
    }) as FastifyBaseLogger;
    const log = lazyChildLogger(counting, { reqId: 'r-2' }, {});
    log.info('dropped');
    log.debug('dropped');
    expect([children, lines.length, log.level]).toEqual([0, 0, 'warn']);
    log.warn('kept');
    expect([children, lines.length]).toEqual([1, 1]);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ reqId: 'r-2', msg: 'kept', level: 40 });
    // A route's own level needs its child at once.
    lazyChildLogger(counting, { reqId: 'r-3' }, { level: 'debug' });
    expect(children).toBe(2);
  });
});
