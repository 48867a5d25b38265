import { InvalidArgumentError } from './errors.ts';

// Go's path/filepath.Match, reimplemented as a compiled RegExp, because Docker
// and BuildKit resolve COPY/ADD sources and .dockerignore classes with it:
//   *  any run of non-'/' characters      ?  one non-'/' character
//   [abc] [a-z] [^a-z]  a class (may match '/')   \c  the character c literally
// Malformed patterns (unclosed class, empty class, trailing '\') are errors even
// when the name would not have matched, as Go reports them since 1.16.

export class BadPatternError extends InvalidArgumentError {
  constructor(pattern: string, reason: string) {
    super(`pattern ${JSON.stringify(pattern)} is malformed: ${reason} (Go filepath.Match syntax)`);
  }
}

// In 'u' mode only these may be escaped outside a class (an escaped '-' there is a SyntaxError)...
const REGEX_SYNTAX = new Set([...'^$\\.*+?()[]{}|/']);

/** A code point as a RegExp atom outside a character class, in 'u' mode. */
export function regexLiteral(ch: string): string {
  return REGEX_SYNTAX.has(ch) ? `\\${ch}` : ch;
}

/** ...while inside a class '-' must be escaped too. */
function classLiteral(ch: string): string {
  return ch === '-' ? '\\-' : regexLiteral(ch);
}

/**
 * Parses a character class starting just after '[' at index `start` of `chars`.
 * Returns the JS class source and the index just after the closing ']'.
 */
export function parseGoClass(
  pattern: string,
  chars: string[],
  start: number,
): { source: string; next: number } {
  let i = start;
  let negated = false;
  if (chars[i] === '^') {
    negated = true;
    i++;
  }
  let body = '';
  let ranges = 0;
  const readRuneOrEscape = (): string => {
    const ch = chars[i];
    if (ch === undefined || ch === '-' || ch === ']')
      throw new BadPatternError(pattern, 'bad character class');
    i++;
    if (ch !== '\\') return ch;
    const escaped = chars[i];
    if (escaped === undefined) throw new BadPatternError(pattern, 'trailing backslash in character class');
    i++;
    return escaped;
  };
  for (;;) {
    if (chars[i] === ']' && ranges > 0) {
      i++;
      break;
    }
    const lo = readRuneOrEscape();
    if (chars[i] === undefined) throw new BadPatternError(pattern, 'unclosed character class');
    let hi = lo;
    if (chars[i] === '-') {
      i++;
      hi = readRuneOrEscape();
      if (chars[i] === undefined) throw new BadPatternError(pattern, 'unclosed character class');
    }
    // An inverted range (z-a) matches nothing in Go but is a syntax error in JS.
    if (lo.codePointAt(0)! <= hi.codePointAt(0)!) {
      body += lo === hi ? classLiteral(lo) : `${classLiteral(lo)}-${classLiteral(hi)}`;
    }
    ranges++;
  }
  if (body === '') return { source: negated ? '[^]' : '[]', next: i };
  return { source: `[${negated ? '^' : ''}${body}]`, next: i };
}

/** Translates one Go filepath.Match pattern into RegExp source without anchors. */
export function goGlobSource(pattern: string): string {
  const chars = [...pattern];
  let out = '';
  for (let i = 0; i < chars.length;) {
    const ch = chars[i]!;
    if (ch === '*') {
      out += '[^/]*';
      i++;
    } else if (ch === '?') {
      out += '[^/]';
      i++;
    } else if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) throw new BadPatternError(pattern, 'trailing backslash');
      out += regexLiteral(next);
      i += 2;
    } else if (ch === '[') {
      const cls = parseGoClass(pattern, chars, i + 1);
      out += cls.source;
      i = cls.next;
    } else {
      out += regexLiteral(ch);
      i++;
    }
  }
  return out;
}

const cache = new Map<string, RegExp>();

/** Go filepath.Match(pattern, name): the whole name must match. */
export function goMatch(pattern: string, name: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    re = new RegExp(`^${goGlobSource(pattern)}$`, 'u');
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, re);
  }
  return re.test(name);
}

/** Throws BadPatternError when Go would reject the pattern. */
export function validateGoPattern(pattern: string): void {
  goGlobSource(pattern);
}

/** True when the pattern has glob syntax (Go's hasMeta). */
export function hasGlobMeta(pattern: string): boolean {
  return /[*?[\\]/u.test(pattern);
}
