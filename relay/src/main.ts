// g2c-relay command line: serve (default), forward, admin.
import { formatHelp, type OptionSpec, parseOptions, runMain } from '@g2c/cli';

export const serveOptions: OptionSpec[] = [
  { name: 'listen', type: 'string', default: '0.0.0.0:8080', value: 'HOST:PORT', description: 'HTTP listen address' },
  {
    name: 'data-dir',
    type: 'string',
    default: './.g2c',
    value: 'DIR',
    description: 'embedded store, master key, credentials',
  },
  { name: 'database-url', type: 'string', value: 'URL', description: 'external PostgreSQL store (production)' },
  { name: 'tls-cert', type: 'string', value: 'FILE', description: 'PEM certificate for HTTPS/WSS' },
  { name: 'tls-key', type: 'string', value: 'FILE', description: 'PEM private key for HTTPS/WSS' },
  { name: 'public-url', type: 'string', value: 'URL', description: 'URL agents and clients use to reach this relay' },
  { name: 'log-level', type: 'string', default: 'info', description: 'trace, debug, info, warn or error' },
];

runMain(async (argv) => {
  const { help } = parseOptions(serveOptions, argv);
  if (help) {
    process.stdout.write(
      formatHelp(
        'usage: g2c-relay [serve] [options]\n       g2c-relay forward --relay URL --tunnel ID|NAME --to HOST:PORT --listen 127.0.0.1:6543\n       g2c-relay admin create-org NAME',
        serveOptions,
      ),
    );
    return 0;
  }
  throw new Error('g2c-relay is not implemented yet');
});
