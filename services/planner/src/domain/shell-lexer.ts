/**
 * Variable expansion and word splitting with the semantics of BuildKit's Dockerfile shell lexer:
 * quotes, the escape token (`\` or the backtick of `# escape=`), `$v`, `${v}` and the
 * `:-  -  :+  +  :?  ?  #  ##  %  %%  /  //` operators. Unset variables expand to the empty string.
 */
import { ShellExpansionError } from './shell-lexer-error.ts';
import { isSpace as isGoSpace } from './argument-splitting.ts';
import { replacePattern, trimPrefixPattern, trimSuffixPattern } from './shell-pattern.ts';

export { ShellExpansionError };

export interface LexerOptions {
  escapeToken: string;
  /** Keep quote characters in the output (used to find heredoc markers). */
  rawQuotes?: boolean;
  /** Keep escape tokens in the output. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (COPY heredoc bodies). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (finding heredoc markers like `<<$EOF`). */
  skipUnsetEnv?: boolean;
  /** Keep `<<` and the blanks after it in the word that follows (`<<  EOF` is one word). */
  heredocWords?: boolean;
}

export interface Expansion {
  /** The word with variables substituted and quotes removed, spaces kept. */
  result: string;
  /** The same, split into words on unquoted whitespace after substitution. */
  words: string[];
  /** Variable names referenced but not set. */
  unmatched: string[];
}

export type Environment = ReadonlyMap<string, string>;

const EOF = '';
const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;
const isSpace = (ch: string): boolean => ch !== EOF && isGoSpace(ch);
const isDigit = (ch: string): boolean => ch >= '0' && ch <= '9' ? true : ch > '\x7f' && DIGIT.test(ch);
const isNameChar = (ch: string): boolean =>
  (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch === '_' || (ch > '\x7f' && (LETTER.test(ch) || DIGIT.test(ch)));
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Collects nothing: for callers that only want the expanded string. */
class NoWords {
  addChar(): void {}
  addRaw(): void {}
  addString(): void {}
  finish(): string[] {
    return [];
  }
}

const NO_WORDS = new NoWords();

class WordCollector {
  word = '';
  words: string[] = [];
  inWord = false;

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }
  addRaw(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  finish(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class WordScanner {
  private pos = 0;
  private rawEscapes: boolean;
  unmatched: Set<string> | undefined;
  collectWords = true;

  constructor(
    private readonly src: string,
    private readonly env: Environment,
    private readonly opts: LexerOptions,
  ) {
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  peek(): string {
    return this.src[this.pos] ?? EOF;
  }
  next(): string {
    const ch = this.src[this.pos];
    if (ch === undefined) return EOF;
    this.pos++;
    return ch;
  }

  processStopOn(stopChar: string, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    const words = this.collectWords ? new WordCollector() : NO_WORDS;
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek();
        if (stopChar !== EOF && ch === stopChar) {
          this.next();
          return { result, words: words.finish() };
        }
        if (ch === '$') {
          const value = this.processDollar();
          result += value;
          words.addString(value);
          continue;
        }
        if (this.opts.heredocWords && ch === '<' && this.src[this.pos + 1] === '<') {
          let marker = this.next() + this.next();
          while (this.peek() !== EOF && isSpace(this.peek())) marker += this.next();
          result += marker;
          words.addRaw(marker);
          continue;
        }
        if (!this.opts.skipProcessQuotes && (ch === "'" || ch === '"')) {
          const value = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += value;
          words.addRaw(value);
          continue;
        }
        let c = this.next();
        if (c === this.opts.escapeToken) {
          if (this.rawEscapes) {
            words.addRaw(c);
            result += c;
          }
          c = this.next();
          if (c === EOF) break;
          words.addRaw(c);
        } else {
          words.addChar(c);
        }
        result += c;
      }
      if (stopChar !== EOF) throw new ShellExpansionError(`unexpected end of statement while looking for matching ${stopChar}`);
      return { result, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.opts.rawQuotes) result += ch;
    for (;;) {
      ch = this.next();
      if (ch === EOF) throw new ShellExpansionError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const peeked = this.peek();
      if (peeked === EOF) throw new ShellExpansionError('unexpected end of statement while looking for matching double-quote');
      if (peeked === '"') {
        const close = this.next();
        if (this.opts.rawQuotes) result += close;
        return result;
      }
      if (peeked === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.opts.escapeToken) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === EOF) continue;
        if (after === '"' || after === '$' || after === this.opts.escapeToken) ch = this.next();
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw new ShellExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ShellExpansionError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let modifier = ch;
    let nullIsUnset = false;

    if (ch === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + '}';
      return value ?? '';
    }
    if (ch === '/') return this.processReplace(name);
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      modifier += ch;
    } else if (ch !== '+' && ch !== '-' && ch !== '?' && ch !== '#' && ch !== '%') {
      throw new ShellExpansionError(`unsupported modifier (${modifier}) in substitution`);
    }

    let word: string;
    try {
      word = this.processStopOn('}', ch === '#' || ch === '%').result;
    } catch (err) {
      if (this.peek() === EOF) throw new ShellExpansionError("syntax error: missing '}'");
      throw err;
    }
    const value = this.lookup(name);
    if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + modifier + word + '}';
    const isUnset = value === undefined || (nullIsUnset && value === '');
    switch (ch) {
      case '-':
        return isUnset ? word : (value as string);
      case '+':
        return isUnset ? '' : word;
      case '?':
        if (value === undefined) throw new ShellExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new ShellExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        let pattern = word;
        let greedy = false;
        if (pattern.startsWith(ch)) {
          greedy = true;
          pattern = pattern.slice(1);
        }
        return ch === '%' ? trimSuffixPattern(pattern, value ?? '', greedy) : trimPrefixPattern(pattern, value ?? '', greedy);
      }
      default:
        throw new ShellExpansionError(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    let pattern: string;
    try {
      pattern = this.processStopOn('/', true).result;
    } catch (err) {
      if (this.peek() === EOF) throw new ShellExpansionError("syntax error: missing '/' in ${}");
      throw err;
    }
    let replacement: string;
    try {
      replacement = this.processStopOn('}', true).result;
    } catch (err) {
      if (this.peek() === EOF) throw new ShellExpansionError("syntax error: missing '}'");
      throw err;
    }
    const value = this.lookup(name);
    if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + '/' + pattern + '/' + replacement + '}';
    return replacePattern(value ?? '', pattern, replacement, all);
  }

  private processName(): string {
    let name = '';
    for (let ch = this.peek(); ch !== EOF; ch = this.peek()) {
      if (name.length === 0 && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += this.next();
        return name;
      }
      if (name.length === 0 && SPECIAL_PARAMS.has(ch)) return this.next();
      if (!isNameChar(ch)) break;
      name += this.next();
    }
    return name;
  }

  private lookup(name: string): string | undefined {
    const value = this.env.get(name);
    if (value === undefined) (this.unmatched ??= new Set()).add(name);
    return value;
  }
}

const needsLexing = (word: string, opts: LexerOptions): boolean =>
  word.includes('$') || word.includes('"') || word.includes("'") || word.includes(opts.escapeToken) || (opts.heredocWords === true && word.includes('<<'));

/** Expands one word as BuildKit's ProcessWord/ProcessWords do. Throws ShellExpansionError. */
export function expandWord(word: string, env: Environment, opts: LexerOptions): Expansion {
  if (!needsLexing(word, opts)) {
    const words = word.split(/[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u).filter((w) => w !== '');
    return { result: word, words, unmatched: [] };
  }
  const scanner = new WordScanner(word, env, opts);
  try {
    const { result, words } = scanner.processStopOn(EOF, opts.rawEscapes ?? false);
    return { result, words, unmatched: scanner.unmatched ? [...scanner.unmatched] : [] };
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new ShellExpansionError(`failed to process "${word}": ${err.message}`);
    throw err;
  }
}

/** Like expandWord(...).result, without splitting into words (the common case, kept cheap). */
export function expandString(word: string, env: Environment, opts: LexerOptions): string {
  if (!needsLexing(word, opts)) return word;
  const scanner = new WordScanner(word, env, opts);
  scanner.collectWords = false;
  try {
    return scanner.processStopOn(EOF, opts.rawEscapes ?? false).result;
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new ShellExpansionError(`failed to process "${word}": ${err.message}`);
    throw err;
  }
}
