// The compose stack's files are valid: docker-compose accepts docker-compose.yml (CI has the
// command but no Docker engine, so this is as far as it can go here), the stack has the shape
// the README describes, and the scripts it runs parse.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = (command: string, args: string[]) => execFileSync(command, args, { cwd: root, encoding: 'utf8' });

function hasCommand(command: string): boolean {
  try {
    execFileSync(command, ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const compose = hasCommand('docker-compose');
if (!compose)
  console.warn('docker-compose.yml not validated: docker-compose is not installed (apt-get install docker-compose)');

describe.skipIf(!compose)('docker-compose.yml', () => {
  it('validates with docker-compose config', () => {
    expect(() => run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'])).not.toThrow();
  });

  it('has the relay, its store, the private network with database and agent, and the setup job', () => {
    const services = run('docker-compose', ['-f', 'docker-compose.yml', 'config', '--services']).trim().split('\n');
    expect(services.sort()).toEqual(['agent', 'keygen', 'private-db', 'relay', 'relay-store', 'setup']);
    const config = run('docker-compose', ['-f', 'docker-compose.yml', 'config']);
    // The private database lives only on the internal network the relay is not on.
    const section = (name: string) => config.split(/\n {2}(?=[a-z-]+:\n)/).find((s) => s.startsWith(`${name}:`)) ?? '';
    expect(section('private-db')).toMatch(/networks:\n\s+onprem: \{\}|networks:\n\s+onprem: null/);
    expect(section('relay')).toMatch(/8080/);
    expect(section('relay')).not.toMatch(/onprem/);
    expect(section('agent')).toMatch(/onprem/);
    expect(config).toMatch(/onprem:\n\s+internal: true/);
    expect(section('agent')).toMatch(/--token-file/);
  });
});

describe('docker/Dockerfile', () => {
  const text = readFileSync(join(root, 'docker/Dockerfile'), 'utf8');
  /** The instructions of each stage, by stage name. */
  const stages = new Map<string, string>();
  for (const part of text.split(/^(?=FROM )/m).slice(1)) stages.set(/ AS (\S+)/.exec(part)![1]!, part);

  it('is multi-stage: a build stage, then relay and agent images on a runtime without dev dependencies', () => {
    expect([...stages.keys()]).toEqual(['build', 'runtime', 'relay', 'agent']);
    expect(stages.get('build')).toMatch(/npm ci[\s\S]*npm prune --omit=dev/);
    expect(stages.get('runtime')).toMatch(/COPY --from=build/);
    expect(stages.get('relay')).toMatch(/^FROM runtime AS relay/);
    expect(stages.get('agent')).toMatch(/^FROM runtime AS agent/);
  });

  it('runs as a non-root user, with a health check in each image', () => {
    expect(stages.get('runtime')).toMatch(/^USER node$/m);
    for (const image of ['relay', 'agent']) {
      expect(stages.get(image)).not.toMatch(/^USER /m);
      expect(stages.get(image)).toMatch(/^HEALTHCHECK .*\\\n\s+CMD /m);
    }
  });
});

describe('compose scripts', () => {
  it('parse', () => {
    expect(() => run(process.execPath, ['--check', 'docker/setup.mjs'])).not.toThrow();
    expect(() => run('sh', ['-n', 'docker/relay-entrypoint.sh'])).not.toThrow();
    expect(() => run('sh', ['-n', 'docker/private-db/00-app-role.sh'])).not.toThrow();
  });
});
