// The stream-open header (DESIGN 4.2): a 2-byte big-endian length N, then N bytes of UTF-8
// JSON. The relay sends {"v":1,"host","port"} on a new stream; the agent answers
// {"ok":true} or {"ok":false,"code","message"}; raw bytes follow. This module is pure:
// bytes in, values out, no streams and no timers.
import { isTunnelErrorCode, OpenHeaderError, type TunnelErrorCode } from './errors.js';

/** Largest JSON body of a header, in bytes. */
export const OPEN_HEADER_MAX = 4096;
/** Version of the open request. */
export const OPEN_VERSION = 1;

export interface OpenRequest {
  v: typeof OPEN_VERSION;
  host: string;
  port: number;
}

export type OpenReply = { ok: true } | { ok: false; code: TunnelErrorCode; message: string };

/** Frames a JSON value as a header. Throws OpenHeaderError if it does not fit. */
export function encodeOpenHeader(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  if (json.length === 0 || json.length > OPEN_HEADER_MAX) {
    throw new OpenHeaderError(`open header of ${json.length} bytes; it must be 1..${OPEN_HEADER_MAX}`);
  }
  const out = Buffer.allocUnsafe(2 + json.length);
  out.writeUInt16BE(json.length, 0);
  json.copy(out, 2);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Incremental decoder of one header. Feed it chunks as they arrive (split anywhere); it
 * returns undefined until the header is complete, then the decoded JSON value and the bytes
 * that followed it in the last chunk (they belong to the payload). Throws OpenHeaderError on
 * a zero or oversize length, invalid UTF-8 or invalid JSON. Single use.
 */
export class OpenHeaderReader {
  private readonly parts: Buffer[] = [];
  private have = 0;
  private length = -1;
  private done = false;

  push(chunk: Buffer): { value: unknown; rest: Buffer } | undefined {
    if (this.done) throw new OpenHeaderError('open header already decoded');
    this.parts.push(chunk);
    this.have += chunk.length;
    if (this.length < 0) {
      if (this.have < 2) return undefined;
      const head = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
      this.parts.length = 0;
      this.parts.push(head);
      this.length = head.readUInt16BE(0);
      if (this.length === 0 || this.length > OPEN_HEADER_MAX) {
        this.done = true;
        throw new OpenHeaderError(`open header length ${this.length}; it must be 1..${OPEN_HEADER_MAX}`);
      }
    }
    if (this.have < 2 + this.length) return undefined;
    this.done = true;
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts.length = 0;
    const body = all.subarray(2, 2 + this.length);
    const rest = all.subarray(2 + this.length);
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(body));
    } catch (err) {
      throw new OpenHeaderError(`open header is not UTF-8 JSON: ${(err as Error).message}`);
    }
    return { value, rest };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a decoded open request. Throws OpenHeaderError saying what is wrong. */
export function parseOpenRequest(value: unknown): OpenRequest {
  if (!isObject(value)) throw new OpenHeaderError('open request must be a JSON object');
  if (value.v !== OPEN_VERSION) throw new OpenHeaderError(`open request version ${String(value.v)} not supported`);
  const { host, port } = value;
  if (typeof host !== 'string' || host.length === 0 || host.length > 253 + 2) {
    throw new OpenHeaderError('open request host must be a non-empty string of at most 255 characters');
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new OpenHeaderError('open request port must be an integer 1..65535');
  }
  return { v: OPEN_VERSION, host, port };
}

/** Validates a decoded open reply. Throws OpenHeaderError saying what is wrong. */
export function parseOpenReply(value: unknown): OpenReply {
  if (!isObject(value)) throw new OpenHeaderError('open reply must be a JSON object');
  if (value.ok === true) return { ok: true };
  if (value.ok !== false) throw new OpenHeaderError('open reply must have "ok": true or false');
  const code = isTunnelErrorCode(value.code) ? value.code : 'unreachable';
  const message = typeof value.message === 'string' ? value.message : `agent refused the stream (${code})`;
  return { ok: false, code, message };
}
