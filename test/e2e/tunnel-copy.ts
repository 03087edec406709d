// COPY IN and COPY OUT for the tunnel tests, as pg "submittables" (pg runs them like queries),
// hashing every byte on the way so that the tests can compare what went in with what came out.
// Written here rather than adding pg-copy-streams: the tests need only these two paths.
import { createHash, type Hash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type pg from 'pg';

interface PgConnection extends EventEmitter {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): boolean | undefined;
  endCopyFrom(): void;
  stream: EventEmitter & { writable: boolean };
}

abstract class CopyQuery {
  protected resolve!: (value: { bytes: number; sha256: string; rowCount: number }) => void;
  protected reject!: (err: Error) => void;
  readonly done: Promise<{ bytes: number; sha256: string; rowCount: number }>;
  protected readonly hash: Hash = createHash('sha256');
  protected bytes = 0;
  private rowCount = 0;
  private error: Error | undefined;

  constructor(private readonly text: string) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: PgConnection): void {
    connection.query(this.text);
  }

  handleCommandComplete(msg: { text: string }): void {
    this.rowCount = Number(/(\d+)$/.exec(msg.text)?.[1] ?? 0);
  }

  handleReadyForQuery(): void {
    if (this.error) this.reject(this.error);
    else this.resolve({ bytes: this.bytes, sha256: this.hash.digest('hex'), rowCount: this.rowCount });
  }

  handleError(err: Error): void {
    this.error = err;
    // pg calls handleReadyForQuery after an error in a live session; on a dead one it does not.
    this.reject(err);
  }

  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCopyInResponse(_connection: PgConnection): void {}
  handleCopyData(_msg: { chunk: Buffer }, _connection: PgConnection): void {}
}

class CopyOut extends CopyQuery {
  override handleCopyData(msg: { chunk: Buffer }): void {
    this.bytes += msg.chunk.length;
    this.hash.update(msg.chunk);
  }
}

class CopyIn extends CopyQuery {
  constructor(
    text: string,
    private readonly chunks: () => Iterator<Buffer>,
  ) {
    super(text);
  }

  override handleCopyInResponse(connection: PgConnection): void {
    const it = this.chunks();
    const pump = () => {
      for (;;) {
        const next = it.next();
        if (next.done) {
          connection.endCopyFrom();
          return;
        }
        this.bytes += next.value.length;
        this.hash.update(next.value);
        if (connection.sendCopyFromChunk(next.value) === false) {
          connection.stream.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }
}

/** Runs `COPY ... TO STDOUT` and returns the size and sha256 of the data received. */
export async function copyOut(client: pg.Client | pg.PoolClient, sql: string) {
  const query = new CopyOut(sql);
  void client.query(query as unknown as pg.Submittable);
  return query.done;
}

/** Runs `COPY ... FROM STDIN` with the chunks and returns the size and sha256 of what was sent. */
export async function copyIn(client: pg.Client | pg.PoolClient, sql: string, chunks: () => Iterator<Buffer>) {
  const query = new CopyIn(sql, chunks);
  void client.query(query as unknown as pg.Submittable);
  return query.done;
}

/** Deterministic COPY text rows `id\tpayload\n`, about `totalBytes` in chunks of about 64 KiB. */
export function* copyRows(totalBytes: number): Generator<Buffer> {
  let id = 0;
  let sent = 0;
  while (sent < totalBytes) {
    const lines: string[] = [];
    let size = 0;
    while (size < 64 * 1024) {
      id++;
      const line = `${id}\t${`row-${id}-`.padEnd(90, String.fromCharCode(97 + (id % 26)))}\n`;
      lines.push(line);
      size += line.length;
    }
    const chunk = Buffer.from(lines.join(''));
    sent += chunk.length;
    yield chunk;
  }
}
