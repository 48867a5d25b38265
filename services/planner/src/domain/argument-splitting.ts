/**
 * The parser-level splitting of an instruction's arguments, as BuildKit's Dockerfile parser does it
 * before any variable expansion: leading `--flags`, JSON arrays, whitespace lists and name=value words.
 */

const WHITESPACE = /[\t\v\f\r ]+/;
/** Go's unicode.IsSpace, which BuildKit's splitters use. */
export function isSpace(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

export const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

export class ArgumentSyntaxError extends Error {
  override name = 'ArgumentSyntaxError';
}

/** Splits `--a=b --c 'rest'` into flags (quotes removed, `\` escapes) and the remaining text. */
export function extractBuilderFlags(line: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOk = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = line[pos] ?? '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || line[pos + 1] !== '-') return { flags, rest: line.slice(pos) };
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOk || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { flags, rest: line.slice(pos) };
        if (blankOk || word.length > 0) flags.push(word);
        word = '';
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos] ?? '';
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos] ?? '';
    }
    word += ch;
  }
  return { flags, rest: '' };
}

export function splitWhitespace(rest: string): string[] {
  return rest === '' ? [] : rest.split(WHITESPACE);
}

/** A JSON array of strings, or null when the text is not valid JSON (then it is the shell form). */
export function parseJsonArray(rest: string): string[] | null {
  const text = rest.trimStart();
  if (!text.startsWith('[')) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(parsed)) return null;
  if (!parsed.every((item) => typeof item === 'string')) throw new ArgumentSyntaxError(NOT_STRING_ARRAY);
  return parsed as string[];
}

/**
 * Splits on unquoted whitespace keeping quotes and escapes in the words (they are removed later by
 * expansion): the splitter of ENV, LABEL and ARG.
 */
export function splitKeepingQuotes(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOk = false;
  // UTF-16 units are enough: spaces, quotes and the escape token are never surrogates.
  const chars = rest;
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = chars[pos] ?? '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOk || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOk || word.length > 0) words.push(word);
        word = '';
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
      }
      if (ch === escapeToken) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos] ?? '';
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos] ?? '';
    }
    word += ch;
  }
  return words;
}

export interface KeyValueWord {
  key: string;
  value: string;
  /** Written in the legacy `KEY value` form (BuildKit's NoDelim). */
  legacy?: boolean;
}

/** ENV and LABEL: `name=value ...`, or the legacy `name value with spaces`. */
export function parseNameValue(rest: string, keyword: string, escapeToken: string): KeyValueWord[] {
  const words = splitKeepingQuotes(rest, escapeToken);
  if (words.length === 0) return [];
  if (!(words[0] as string).includes('=')) {
    const parts = rest.split(WHITESPACE);
    if (parts.length < 2) throw new ArgumentSyntaxError(`${keyword} must have two arguments`);
    const first = parts[0] as string;
    const value = rest.slice(rest.indexOf(first) + first.length).replace(/^[\t\v\f\r ]+/, '');
    return [{ key: first, value, legacy: true }];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) throw new ArgumentSyntaxError(`Syntax error - can't find = in "${word}". Must be of the form: name=value`);
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
}
