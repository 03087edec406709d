// What the demo prints: start-up steps with their timing, REST calls and their answers, and the
// closing instructions. Plain text (colour only on a terminal), readable when piped to a file.

const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
const paint = (code: string) => (text: string) => (tty ? `\u001b[${code}m${text}\u001b[0m` : text);
export const bold = paint('1');
export const dim = paint('2');
export const green = paint('32');
export const red = paint('31');
export const cyan = paint('36');

export function line(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function heading(text: string): void {
  line();
  line(bold(`== ${text}`));
}

/** Runs one start-up step, printing `- what ... ok (0.4 s)` or `failed`, and rethrows with the step's name. */
export async function step<T>(what: string, run: () => Promise<T>, detail?: (result: T) => string): Promise<T> {
  const started = performance.now();
  process.stdout.write(`  - ${what} ... `);
  try {
    const result = await run();
    const extra = detail ? ` ${dim(detail(result))}` : '';
    line(`${green('ok')} ${dim(`(${((performance.now() - started) / 1000).toFixed(1)} s)`)}${extra}`);
    return result;
  } catch (err) {
    line(red('failed'));
    throw new StepError(what, err);
  }
}

export class StepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** An array of flat objects as an aligned table; anything else as indented JSON. */
export function formatBody(body: unknown): string {
  if (Array.isArray(body) && body.length > 0 && body.every((r) => r && typeof r === 'object' && !Array.isArray(r))) {
    const columns = [...new Set(body.flatMap((r) => Object.keys(r as object)))];
    const cell = (v: unknown) =>
      v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    const rows = body.map((r) => columns.map((c) => cell((r as Record<string, unknown>)[c])));
    const widths = columns.map((c, i) => Math.min(40, Math.max(c.length, ...rows.map((r) => r[i]!.length))));
    const fmt = (cells: string[]) =>
      cells.map((c, i) => (c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}~` : c.padEnd(widths[i]!))).join('  ');
    return [bold(fmt(columns)), ...rows.map(fmt)].map((l) => `    ${l.trimEnd()}`).join('\n');
  }
  return JSON.stringify(body, null, 2)
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
