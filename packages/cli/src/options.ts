// Command-line options shared by g2c-agent and g2c-relay.
//
// Every option is a flag (`--name value` or `--name=value`), an environment variable
// (`G2C_` + the name in upper case with `-` as `_`) and a key of the JSON `--config` file.
// Flags win over the environment, the environment over the file, the file over defaults.
// Values are parsed and validated here, once; a bad one is an OptionError naming the option.
import { readFileSync } from 'node:fs';

export type OptionType = 'string' | 'int' | 'duration' | 'bool' | 'list';

export interface OptionSpec {
  /** Long flag name without dashes, e.g. `keepalive-interval`. */
  name: string;
  type: OptionType;
  description: string;
  /** Value used when nothing sets the option (already parsed: ms for durations). */
  default?: string | number | boolean | string[];
  required?: boolean;
  /** Placeholder in --help, e.g. `HOST:PORT`. */
  value?: string;
  /** Extra check on the parsed value; return a message to reject it. */
  validate?: (value: never) => string | undefined;
  /** Not shown in --help (still accepted). */
  hidden?: boolean;
}

export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

export class OptionError extends Error {
  readonly code = 'ERR_BAD_OPTION';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`--${option}: ${message}`);
  }
}

export function envName(option: string): string {
  return `G2C_${option.toUpperCase().replace(/-/g, '_')}`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `10s`, `2m`, `1h`; a bare number is seconds. Returns milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 's']!);
}

function parseValue(spec: OptionSpec, raw: unknown): string | number | boolean | string[] {
  const bad = (what: string) => new OptionError(spec.name, `${what}, got ${JSON.stringify(raw)}`);
  switch (spec.type) {
    case 'string':
      if (typeof raw !== 'string' || raw === '') throw bad('expected a non-empty value');
      return raw;
    case 'int': {
      const n = typeof raw === 'number' ? raw : /^-?\d+$/.test(String(raw)) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(n)) throw bad('expected an integer');
      return n;
    }
    case 'duration': {
      const ms = typeof raw === 'number' ? raw * 1000 : parseDuration(String(raw));
      if (ms === undefined || !Number.isFinite(ms) || ms < 0) throw bad('expected a duration such as 500ms, 10s or 2m');
      return ms;
    }
    case 'bool':
      if (raw === true || raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === false || raw === 'false' || raw === '0' || raw === 'no') return false;
      throw bad('expected true or false');
    case 'list': {
      const items = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
      return items.map((s) => s.trim()).filter(Boolean);
    }
  }
}

export interface ParsedCommandLine {
  values: OptionValues;
  /** Arguments that are not options (sub-command and its operands). */
  positionals: string[];
  help: boolean;
}

/**
 * Parses argv (without node and script), the environment and the --config file.
 * Throws OptionError for an unknown flag, a missing value or a bad value.
 */
export function parseOptions(
  specs: readonly OptionSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ParsedCommandLine {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const fromFlags = new Map<string, unknown>();
  const positionals: string[] = [];
  let help = false;
  let configFile = env.G2C_CONFIG;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (name !== 'config' && !spec) throw new OptionError(name, 'unknown option (see --help)');
    let raw: string | boolean;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (spec?.type === 'bool' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) raw = true;
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new OptionError(name, 'missing value');
      raw = next;
      i++;
    }
    if (name === 'config') configFile = String(raw);
    else if (spec!.type === 'list')
      fromFlags.set(name, [...((fromFlags.get(name) as string[]) ?? []), ...String(raw).split(',')]);
    else fromFlags.set(name, raw);
  }

  let fromFile: Record<string, unknown> = {};
  if (configFile && !help) {
    try {
      fromFile = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (err) {
      throw new OptionError('config', `cannot read ${configFile}: ${(err as Error).message}`);
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new OptionError('config', `${configFile} must hold a JSON object keyed by option name`);
    }
    for (const key of Object.keys(fromFile)) {
      if (!byName.has(key)) throw new OptionError('config', `${configFile}: unknown option "${key}"`);
    }
  }

  const values: OptionValues = {};
  for (const spec of specs) {
    let raw: unknown = fromFlags.get(spec.name);
    if (raw === undefined) raw = env[envName(spec.name)] || undefined;
    if (raw === undefined) raw = fromFile[spec.name];
    if (raw === undefined) {
      values[spec.name] = spec.default;
      if (spec.required && !help) throw new OptionError(spec.name, `required (or set ${envName(spec.name)})`);
      continue;
    }
    const value = parseValue(spec, raw);
    const problem = spec.validate?.(value as never);
    if (problem) throw new OptionError(spec.name, problem);
    values[spec.name] = value;
  }
  return { values, positionals, help };
}

function formatDefault(spec: OptionSpec): string {
  if (spec.default === undefined || spec.default === false) return '';
  if (spec.type === 'duration' && typeof spec.default === 'number') {
    const ms = spec.default;
    return ` (default ${ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`})`;
  }
  return ` (default ${Array.isArray(spec.default) ? spec.default.join(',') : spec.default})`;
}

/** The --help text: usage line, then one line per option with its variable and default. */
export function formatHelp(usage: string, specs: readonly OptionSpec[], footer = ''): string {
  const rows = specs
    .filter((s) => !s.hidden)
    .map((s) => [`  --${s.name}${s.type === 'bool' ? '' : ` ${s.value ?? s.type.toUpperCase()}`}`, s]);
  rows.push(['  --config FILE', { name: 'config', type: 'string', description: 'JSON file of options' } as OptionSpec]);
  const width = Math.max(...rows.map(([flag]) => (flag as string).length)) + 2;
  const lines = rows.map(([flag, spec]) => {
    const s = spec as OptionSpec;
    return `${(flag as string).padEnd(width)}${s.description}${formatDefault(s)} [${envName(s.name)}]`;
  });
  return `${usage}\n\nOptions (flags win over environment variables, which win over --config):\n${lines.join('\n')}\n${footer}`;
}
