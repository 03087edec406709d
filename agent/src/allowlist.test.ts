import { describe, expect, it } from 'vitest';
import { Allowlist, ipBytes, parseAllowEntry } from './allowlist.js';

describe('ipBytes', () => {
  it('parses IPv4, IPv6 and v4-mapped IPv6', () => {
    expect([...ipBytes('10.0.0.5')!]).toEqual([10, 0, 0, 5]);
    expect([...ipBytes('::1')!]).toEqual([...new Array(15).fill(0), 1]);
    expect([...ipBytes('0:0:0:0:0:0:0:1')!]).toEqual([...ipBytes('::1')!]);
    expect([...ipBytes('fd00::5')!]).toEqual([0xfd, 0, ...new Array(13).fill(0), 5]);
    expect([...ipBytes('FD00:0::5')!]).toEqual([...ipBytes('fd00::5')!]);
    expect([...ipBytes('1:2:3:4:5:6:7:8')!]).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect([...ipBytes('::ffff:10.0.0.5')!]).toEqual([10, 0, 0, 5]);
    expect([...ipBytes('::ffff:a00:5')!]).toEqual([10, 0, 0, 5]);
    expect([...ipBytes('64:ff9b::192.0.2.1')!].slice(12)).toEqual([192, 0, 2, 1]);
    expect([...ipBytes('fe80::1%eth0')!]).toEqual([...ipBytes('fe80::1')!]);
    expect(ipBytes('db.internal')).toBeUndefined();
    expect(ipBytes('010.0.0.5')).toBeUndefined();
  });
});

describe('parseAllowEntry', () => {
  it('accepts the documented forms', () => {
    expect(parseAllowEntry('db.internal:5432')).toMatchObject({ name: 'db.internal', port: 5432 });
    expect(parseAllowEntry('DB.Internal:*')).toMatchObject({ name: 'db.internal', port: undefined });
    expect(parseAllowEntry('10.0.0.5:5432').network?.prefix).toBe(32);
    expect(parseAllowEntry('10.0.0.0/24:5432').network?.prefix).toBe(24);
    expect(parseAllowEntry('[fd00::5]:5432').network?.prefix).toBe(128);
    expect(parseAllowEntry('[fd00::/64]:*').network?.prefix).toBe(64);
    expect(parseAllowEntry('fd00::/64:5432').network?.prefix).toBe(64);
    expect(parseAllowEntry('localhost:5432')).toMatchObject({ name: 'localhost' });
  });

  it('rejects what it cannot read, naming the entry', () => {
    for (const bad of [
      'db.internal',
      ':5432',
      'db:0',
      'db:65536',
      'db:54x',
      '*:5432',
      '*:*',
      'fd00::5:5432',
      '[fd00::5:5432',
      '10.0.0.0/33:5432',
      'db/24:5432',
      'bad host:5432',
      'a..b:1',
    ]) {
      expect(() => parseAllowEntry(bad), bad).toThrow(new RegExp(`"${bad.replace(/[[\]*.]/g, '\\$&')}"`));
    }
  });
});

describe('Allowlist', () => {
  const list = new Allowlist([
    'db.internal:5432',
    'reports.internal:*',
    '10.0.0.0/24:5432',
    '192.168.1.7:6432',
    '[fd00::/64]:5432',
    '[::1]:5433',
  ]);

  it('denies by default', () => {
    expect(new Allowlist([]).allows('localhost', 5432)).toBe(false);
    expect(list.allows('other.internal', 5432)).toBe(false);
  });

  it('matches names exactly, case-insensitively, with the port', () => {
    expect(list.allows('db.internal', 5432)).toBe(true);
    expect(list.allows('DB.INTERNAL', 5432)).toBe(true);
    // A trailing dot is part of the name (search domains apply to one spelling only).
    expect(list.allows('db.internal.', 5432)).toBe(false);
    expect(new Allowlist(['db.internal.:5432']).allows('db.internal.', 5432)).toBe(true);
    expect(new Allowlist(['db.:5432']).allows('db', 5432)).toBe(false);
    // Brackets are for IPv6 literals, not names.
    expect(list.allows('[db.internal]', 5432)).toBe(false);
    expect(list.allows('[10.0.0.1]', 5432)).toBe(false);
    expect(list.allows('db.internal', 5433)).toBe(false);
    expect(list.allows('x.db.internal', 5432)).toBe(false);
    expect(list.allows('db.internal.evil.com', 5432)).toBe(false);
    expect(list.allows('reports.internal', 1)).toBe(true);
    expect(list.allows('reports.internal', 65535)).toBe(true);
  });

  it('matches CIDRs and IPs against IP literals only', () => {
    expect(list.allows('10.0.0.1', 5432)).toBe(true);
    expect(list.allows('10.0.0.255', 5432)).toBe(true);
    expect(list.allows('10.0.1.0', 5432)).toBe(false);
    expect(list.allows('10.0.0.1', 5433)).toBe(false);
    expect(list.allows('::ffff:10.0.0.9', 5432)).toBe(true);
    expect(list.allows('192.168.1.7', 6432)).toBe(true);
    expect(list.allows('192.168.1.8', 6432)).toBe(false);
    // A name is not matched by a CIDR, whatever it resolves to.
    expect(list.allows('localhost', 5433)).toBe(false);
    // Forms that getaddrinfo may read as 10.0.0.1 are names, and no name entry allows them.
    expect(list.allows('010.0.0.1', 5432)).toBe(false);
    expect(list.allows('167772161', 5432)).toBe(false);
  });

  it('matches IPv6 in any spelling, with or without brackets', () => {
    expect(list.allows('fd00::1', 5432)).toBe(true);
    expect(list.allows('FD00:0:0:0:ffff::1', 5432)).toBe(true);
    expect(list.allows('fd00:0:0:1::1', 5432)).toBe(false);
    expect(list.allows('[::1]', 5433)).toBe(true);
    expect(list.allows('0:0:0:0:0:0:0:1', 5433)).toBe(true);
    expect(list.allows('::1', 5432)).toBe(false);
  });

  it('matches an IPv6 zone only with the same zone', () => {
    const zoned = new Allowlist(['[fe80::1%eth0]:5432', '[fe80::/10]:6432']);
    expect(zoned.allows('fe80::1%eth0', 5432)).toBe(true);
    expect(zoned.allows('[fe80::1%ETH0]', 5432)).toBe(true);
    expect(zoned.allows('fe80::1%eth1', 5432)).toBe(false);
    expect(zoned.allows('fe80::1', 5432)).toBe(false);
    expect(zoned.allows('fe80::2', 6432)).toBe(true);
    expect(zoned.allows('fe80::2%eth0', 6432)).toBe(false);
    expect(list.allows('fd00::1%eth0', 5432)).toBe(false);
  });

  it('says which entry matched', () => {
    expect(list.match('10.0.0.3', 5432)?.text).toBe('10.0.0.0/24:5432');
  });
});
