// Reads one stream-open header from a Readable (a mux stream) and puts back any payload
// bytes that came with it, so that the stream can be piped afterwards as if the header had
// never been there. The decoding itself is OpenHeaderReader's.
import type { Readable } from 'node:stream';
import { OpenHeaderError } from './errors.js';
import { OpenHeaderReader } from './open-header.js';

export interface ReadOpenHeaderOptions {
  /** Reject with code ERR_OPEN_HEADER_TIMEOUT when the header is not complete by then. */
  timeoutMs?: number;
}

export class OpenHeaderTimeoutError extends Error {
  override readonly name = 'OpenHeaderTimeoutError';
  readonly code = 'ERR_OPEN_HEADER_TIMEOUT';
}

/** Resolves with the decoded JSON value. Rejects on a bad header, end, error or timeout. */
export function readOpenHeader(stream: Readable, options: ReadOpenHeaderOptions = {}): Promise<unknown> {
  const reader = new OpenHeaderReader();
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onReadable = () => {
      for (;;) {
        const chunk = stream.read() as Buffer | null;
        if (chunk === null) return;
        let result: ReturnType<OpenHeaderReader['push']>;
        try {
          result = reader.push(chunk);
        } catch (err) {
          fail(err as Error);
          return;
        }
        if (result) {
          cleanup();
          if (result.rest.length > 0) stream.unshift(result.rest);
          resolve(result.value);
          return;
        }
      }
    };
    const onEnd = () => fail(new OpenHeaderError('stream ended before its open header was complete'));
    const onError = (err: Error) => fail(err);
    const onClose = () => fail(new OpenHeaderError('stream closed before its open header was complete'));
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(
        () => fail(new OpenHeaderTimeoutError(`no complete open header within ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
    }
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.once('close', onClose);
    onReadable();
  });
}
