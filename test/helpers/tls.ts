// Throwaway TLS material for tests and benchmarks, made with the openssl command line.
import { execFile } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Writes a self-signed EC P-256 certificate for 127.0.0.1 and localhost (valid 2 days) and its
 * key (0600) to the given files, and returns both PEM texts.
 */
export async function selfSignedCertificate(files: {
  certFile: string;
  keyFile: string;
}): Promise<{ cert: string; key: string }> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    files.keyFile,
    '-out',
    files.certFile,
  ]);
  await chmod(files.keyFile, 0o600);
  await chmod(files.certFile, 0o644);
  return { cert: await readFile(files.certFile, 'utf8'), key: await readFile(files.keyFile, 'utf8') };
}
