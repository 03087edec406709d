// The agent's allowlist (DESIGN 4.2): the only targets a relay may reach through this agent.
// Default deny. Entries:
//   host:port      db.internal:5432   a name, matched exactly (case-insensitive) to the
//                                     requested host string; the agent resolves it itself.
//                                     A trailing dot counts ("db." and "db" resolve differently
//                                     under search domains), brackets belong to IPv6 only.
//   host:*         db.internal:*      any port of that name
//   ip:port        10.0.0.5:5432, [fd00::5]:5432
//   cidr:port      10.0.0.0/24:5432, [fd00::/64]:5432 (brackets optional for a CIDR), or :*
// CIDRs and IPs match only IP literals: a name is never allowed because of what it resolves
// to, and an IP is never allowed because some name entry resolves to it. This module is pure.
import { isIP } from 'node:net';

export interface AllowEntry {
  /** The entry as the user wrote it (for logs and errors). */
  text: string;
  /** Lower-case name, for name entries. */
  name?: string;
  /** Network address bytes (4 or 16) and prefix length, for IP and CIDR entries. */
  network?: { bytes: Uint8Array; prefix: number };
  /** IPv6 zone (`fe80::1%eth0`), lower case: a zoned entry matches only that zone, an unzoned one no zone. */
  zone?: string;
  /** undefined = any port. */
  port?: number;
}

export class AllowlistError extends Error {
  readonly code = 'ERR_BAD_ALLOW_ENTRY';
}

/** Parses an IPv4 or IPv6 literal into its bytes; v4-mapped IPv6 comes back as IPv4. */
export function ipBytes(text: string): Uint8Array | undefined {
  const family = isIP(text);
  if (family === 4) return Uint8Array.from(text.split('.').map(Number));
  if (family !== 6) return undefined;
  let s = text.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // isIP() has validated the syntax; only the layout is left to undo.
  let tail: number[] = [];
  const last = s.lastIndexOf(':');
  if (s.slice(last + 1).includes('.')) {
    const v4 = s
      .slice(last + 1)
      .split('.')
      .map(Number);
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    s = s.slice(0, last + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16)));
  const gap = s.indexOf('::');
  let words: number[];
  if (gap < 0) words = [...parse(s), ...tail];
  else {
    const left = parse(s.slice(0, gap));
    const right = [...parse(s.slice(gap + 2)), ...tail];
    words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  if (words.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = w >> 8;
    bytes[i * 2 + 1] = w & 0xff;
  });
  // ::ffff:a.b.c.d is IPv4 for matching purposes.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return bytes.slice(12);
  }
  return bytes;
}

function inNetwork(ip: Uint8Array, network: { bytes: Uint8Array; prefix: number }): boolean {
  if (ip.length !== network.bytes.length) return false;
  let bits = network.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (network.bytes[i]! & mask)) return false;
  }
  return true;
}

const NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i;

/** Parses one entry. Throws AllowlistError saying what is wrong. */
export function parseAllowEntry(text: string): AllowEntry {
  const bad = (why: string) =>
    new AllowlistError(`allow entry "${text}": ${why} (expected host:port, host:*, cidr:port or [ipv6]:port)`);
  const entry = text.trim();
  let hostPart: string;
  let portPart: string;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0 || entry[close + 1] !== ':') throw bad('unclosed [ or missing :port');
    hostPart = entry.slice(1, close);
    portPart = entry.slice(close + 2);
  } else {
    const colon = entry.lastIndexOf(':');
    if (colon <= 0) throw bad('missing :port');
    hostPart = entry.slice(0, colon);
    portPart = entry.slice(colon + 1);
    // An unbracketed IPv6 address is ambiguous unless it is a CIDR (the /N ends the address).
    if (hostPart.includes(':') && !hostPart.includes('/')) throw bad('write IPv6 addresses in brackets');
  }
  let port: number | undefined;
  if (portPart !== '*') {
    if (!/^\d{1,5}$/.test(portPart) || Number(portPart) < 1 || Number(portPart) > 65535) {
      throw bad('port must be 1..65535 or *');
    }
    port = Number(portPart);
  }
  const slash = hostPart.indexOf('/');
  if (slash >= 0) {
    const bytes = ipBytes(hostPart.slice(0, slash));
    const prefixText = hostPart.slice(slash + 1);
    if (!bytes) throw bad('a CIDR must start with an IP address');
    const max = bytes.length * 8;
    // A v4-mapped CIDR (::ffff:10.0.0.0/104) is written in IPv6 prefix bits.
    const mappedShift = isIP(hostPart.slice(0, slash)) === 6 && bytes.length === 4 ? 96 : 0;
    if (!/^\d{1,3}$/.test(prefixText)) throw bad('bad prefix length');
    const prefix = Number(prefixText) - mappedShift;
    if (prefix < 0 || prefix > max) throw bad(`prefix length must be 0..${max + mappedShift}`);
    return { text: entry, network: { bytes, prefix }, port, zone: zoneOf(hostPart.slice(0, slash)) };
  }
  const bytes = ipBytes(hostPart);
  if (bytes) return { text: entry, network: { bytes, prefix: bytes.length * 8 }, port, zone: zoneOf(hostPart) };
  if (hostPart === '*') throw bad('a wildcard host is not allowed: name each host or network');
  if (hostPart.length > 253 || !NAME.test(hostPart)) throw bad('not a valid host name or IP address');
  return { text: entry, name: hostPart.toLowerCase(), port };
}

/** The zone of an IPv6 literal (`fe80::1%eth0` -> `eth0`), lower case, or undefined. */
function zoneOf(ip: string): string | undefined {
  const at = ip.indexOf('%');
  return at >= 0 ? ip.slice(at + 1).toLowerCase() : undefined;
}

export class Allowlist {
  readonly entries: readonly AllowEntry[];

  constructor(entries: readonly string[]) {
    this.entries = entries.map(parseAllowEntry);
  }

  /** The entry that allows host:port, or undefined (default deny). */
  match(host: string, port: number): AllowEntry | undefined {
    // Brackets are IPv6 syntax only: "[db.internal]" is not the name db.internal.
    const inner = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : undefined;
    const h = inner !== undefined && isIP(inner) === 6 ? inner : host;
    const ip = ipBytes(h);
    const zone = ip ? zoneOf(h) : undefined;
    const name = ip ? undefined : h.toLowerCase();
    for (const entry of this.entries) {
      if (entry.port !== undefined && entry.port !== port) continue;
      if (ip && entry.network && entry.zone === zone && inNetwork(ip, entry.network)) return entry;
      if (name !== undefined && entry.name === name) return entry;
    }
    return undefined;
  }

  allows(host: string, port: number): boolean {
    return this.match(host, port) !== undefined;
  }
}
