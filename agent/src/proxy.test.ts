import { describe, expect, it } from 'vitest';
import { parseProxyUrl, redactProxyUrl } from './proxy.js';

describe('--proxy URL', () => {
  it('reads host, port and basic credentials', () => {
    expect(parseProxyUrl('http://proxy.corp:3128')).toEqual({
      host: 'proxy.corp',
      port: 3128,
      authorization: undefined,
    });
    expect(parseProxyUrl('http://proxy.corp')).toMatchObject({ port: 80 });
    expect(parseProxyUrl('http://[fd00::1]:8080')).toMatchObject({ host: 'fd00::1', port: 8080 });
    expect(parseProxyUrl('http://al%40ice:p%3Ass@proxy:3128')?.authorization).toBe(
      `Basic ${Buffer.from('al@ice:p:ss').toString('base64')}`,
    );
  });

  it('rejects what is not an http proxy URL', () => {
    for (const bad of ['proxy:3128', 'https://proxy:3128', 'socks5://proxy:1080', 'http://proxy:3128/path', '']) {
      expect(parseProxyUrl(bad), bad).toBeUndefined();
    }
  });

  it('never shows the password in logs', () => {
    expect(redactProxyUrl('http://alice:secret@proxy:3128')).toBe('http://alice:***@proxy:3128/');
    expect(redactProxyUrl('http://proxy:3128')).toBe('http://proxy:3128/');
  });
});
