// CEQL lexer: text in, tokens out. Pure; no schema, no SQL. Used for `where` and also for the
// column lists of `fields` and `orderBy`, so that a name is written the same way everywhere:
// bare (`first_name`), "double quoted" or `back quoted` (the quote doubled inside).
import { ApiError, type ErrorCode } from '../../errors.js';

export type TokenKind =
  | 'identifier' // bare word: a column name or a keyword (the parser decides)
  | 'quoted' // "name" or `name`: always a column name
  | 'string' // 'text'
  | 'number'
  | 'operator' // = != <> < <= > >=
  | '('
  | ')'
  | ','
  | 'end';

export interface Token {
  kind: TokenKind;
  /** Identifier/quoted: the name (unquoted); string: the value; number/operator: the source text. */
  value: string;
  /** 0-based offset of the token's first character. */
  pos: number;
}

/** A CEQL syntax error: HTTP 400 with a stable code and the offending position. */
export class CeqlError extends ApiError {
  constructor(
    code: ErrorCode,
    /** 0-based character offset into the text that was parsed. */
    readonly position: number,
    reason: string,
    text: string,
    what = 'where',
  ) {
    super(code, `Invalid ${what} at position ${position}: ${reason}.\n${snippet(text, position)}`);
  }
}

/** The text around `pos` on one line, and a caret under the offending character. */
export function snippet(text: string, pos: number): string {
  const from = Math.max(0, pos - 40);
  const to = Math.min(text.length, pos + 40);
  const line = `${from > 0 ? '...' : ''}${text.slice(from, to)}${to < text.length ? '...' : ''}`.replace(
    /[\r\n\t]/g,
    ' ',
  );
  return `${line}\n${' '.repeat(pos - from + (from > 0 ? 3 : 0))}^`;
}

const BARE_START = /[\p{L}_]/u;
const BARE_PART = /[\p{L}\p{N}_$]/u;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const NUMBER = /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;

/**
 * Splits `text` into tokens, ending with one `end` token. Throws CeqlError with `code`
 * (`invalid_where` by default) at the first character that starts no token.
 */
export function tokenize(text: string, code: ErrorCode = 'invalid_where', what = 'where'): Token[] {
  const fail = (pos: number, reason: string): never => {
    throw new CeqlError(code, pos, reason, text, what);
  };
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (c === "'" || c === '"' || c === '`') {
      // Quoted: the quote character doubled stands for itself; nothing else is special
      // (a backslash is an ordinary character, as in standard SQL).
      let value = '';
      i++;
      for (;;) {
        const end = text.indexOf(c, i);
        if (end < 0) {
          fail(
            start,
            c === "'"
              ? "unterminated string (a quote inside a string is written twice: '')"
              : `unterminated quoted name (missing closing ${c})`,
          );
        }
        value += text.slice(i, end);
        if (text[end + 1] === c) {
          value += c;
          i = end + 2;
        } else {
          i = end + 1;
          break;
        }
      }
      const nul = value.indexOf('\0');
      if (nul >= 0) fail(start, 'the NUL character is not allowed');
      // A lone UTF-16 surrogate would reach PostgreSQL as U+FFFD and silently match that.
      if (LONE_SURROGATE.test(value)) fail(start, 'invalid Unicode (a lone surrogate)');
      if (c !== "'" && value === '') fail(start, 'empty quoted name');
      tokens.push({ kind: c === "'" ? 'string' : 'quoted', value, pos: start });
      continue;
    }
    NUMBER.lastIndex = i;
    const number = (c === '-' || c === '.' || (c >= '0' && c <= '9')) && NUMBER.exec(text);
    if (number) {
      i += number[0].length;
      if (i < text.length && (text[i] === '.' || BARE_PART.test(text[i] as string))) fail(start, 'malformed number');
      tokens.push({ kind: 'number', value: number[0], pos: start });
      continue;
    }
    if (BARE_START.test(c)) {
      i++;
      while (i < text.length && BARE_PART.test(text[i] as string)) i++;
      tokens.push({ kind: 'identifier', value: text.slice(start, i), pos: start });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '!=' || two === '<>' || two === '<=' || two === '>=') {
      tokens.push({ kind: 'operator', value: two, pos: start });
      i += 2;
      continue;
    }
    if (c === '=' || c === '<' || c === '>') {
      tokens.push({ kind: 'operator', value: c, pos: start });
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: c, value: c, pos: start });
      i++;
      continue;
    }
    fail(start, `unexpected character ${JSON.stringify(String.fromCodePoint(text.codePointAt(i) ?? 0))}`);
  }
  tokens.push({ kind: 'end', value: '', pos: text.length });
  return tokens;
}
