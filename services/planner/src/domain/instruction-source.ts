/**
 * From the dockerfile-ast syntax tree to BuildKit's view of each instruction: the logical line
 * (continuations joined, comment and empty lines inside them dropped), the leading `--flags`, the
 * rest, and the heredoc bodies that follow it. dockerfile-ast finds the instructions and their
 * positions; this file reproduces what BuildKit's parser does with the text they span.
 */
import { DockerfileParser } from 'dockerfile-ast';
import { expandWord } from './shell-lexer.ts';
import { extractBuilderFlags, isSpace, parseJsonArray } from './argument-splitting.ts';

export interface HeredocBody {
  name: string;
  content: string;
  /** False when the delimiter is quoted (`<<'EOF'`, `<<"EOF"`): no expansion of the body. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body lines. */
  chomp: boolean;
  fd: number;
}

export interface InstructionSource {
  /** Upper-cased keyword (not necessarily a known instruction). */
  keyword: string;
  /** The keyword as written. */
  rawKeyword: string;
  line: number;
  column: number;
  endLine: number;
  /** The logical line, keyword included, as BuildKit records it. */
  original: string;
  flags: string[];
  rest: string;
  heredocs: HeredocBody[];
  emptyContinuationLine: boolean;
  /** Where each physical line's text starts in `original` (continuation lines after the first). */
  segments: LineSegment[];
}

export interface LineSegment {
  /** Offset in `original` where this physical line's text begins. */
  offset: number;
  line: number;
  column: number;
}

/** The 1-based line and column in the file of `column` as counted along the logical line (src.column + offset). */
export function physicalPosition(src: Pick<InstructionSource, 'line' | 'column' | 'segments'>, column: number): { line: number; column: number } {
  const offset = column - src.column;
  let at = { line: src.line, column };
  for (const segment of src.segments) if (segment.offset <= offset) at = { line: segment.line, column: segment.column + (offset - segment.offset) };
  return at;
}

export interface SourceProblem {
  line: number;
  column: number;
  instruction: string;
  message: string;
  rule: string;
}

export interface ParsedDockerfile {
  escapeToken: '\\' | '`';
  syntax?: string;
  /** The `# check=` directive's value and line (lint options). */
  check?: { value: string; line: number };
  instructions: InstructionSource[];
  problems: SourceProblem[];
}

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_WORD = /^(\d*)<<(-?)\s*([^<]*)$/;
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const COMMENT = /^[\s]*#/u;

function trimNewline(line: string): string {
  let end = line.length;
  while (end > 0 && (line.charCodeAt(end - 1) === 10 || line.charCodeAt(end - 1) === 13)) end--;
  return end === line.length ? line : line.slice(0, end);
}

interface Directives {
  escapeToken: '\\' | '`';
  syntax?: string;
  check?: { value: string; line: number };
  problems: SourceProblem[];
}

/**
 * BuildKit's parser reads directives from the leading lines (left-trimmed) until the first line that
 * is not a known directive. A shebang first line ends them for the parser, but BuildKit's syntax
 * detection skips it, so after a shebang only `# syntax=` is still recorded.
 */
function readDirectives(lines: string[]): Directives {
  const out: Directives = { escapeToken: '\\', problems: [] };
  const seen = new Set<string>();
  const shebang = lines.length > 0 && (lines[0] as string).startsWith('#!');
  for (let i = shebang ? 1 : 0; i < lines.length; i++) {
    const raw = trimNewline(lines[i] as string);
    let start = 0;
    while (start < raw.length && isSpace(raw[start] as string)) start++;
    const line = raw.slice(start);
    const match = DIRECTIVE.exec(line);
    if (!match) break;
    const name = (match[1] as string).toLowerCase();
    const value = match[2] as string;
    if (!KNOWN_DIRECTIVES.has(name)) break;
    if (shebang) {
      if (name === 'syntax' && out.syntax === undefined) out.syntax = value;
      continue;
    }
    if (seen.has(name)) {
      out.problems.push({ line: i + 1, column: 1, instruction: `# ${name}`, message: `only one ${name} parser directive can be used`, rule: 'InvalidDirective' });
      continue;
    }
    seen.add(name);
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        out.problems.push({ line: i + 1, column: 1, instruction: '# escape', message: `invalid escape token '${value}' does not match \` or \\`, rule: 'InvalidDirective' });
      } else out.escapeToken = value;
    } else if (name === 'syntax') out.syntax = value;
    else if (name === 'check') out.check = { value, line: i + 1 };
  }
  return out;
}

/** Strips the escape token (and trailing blanks after it) ending a line; reports whether the line continues. */
function trimContinuation(line: string, escapeToken: string): { text: string; continues: boolean } {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  if (end > 0 && line[end - 1] === escapeToken) return { text: line.slice(0, end - 1), continues: true };
  return { text: line, continues: false };
}

/** Heredoc markers in a logical line, found the way BuildKit does: by lexing it into shell words. */
export function heredocsInLine(line: string): HeredocBody[] {
  let words: string[];
  try {
    words = expandWord(line, new Map(), { escapeToken: '\\', rawQuotes: true, rawEscapes: true, skipUnsetEnv: true, heredocWords: true }).words;
  } catch {
    return [];
  }
  const docs: HeredocBody[] = [];
  for (const word of words) {
    const doc = parseHeredocMarker(word);
    if (doc) docs.push(doc);
  }
  return docs;
}

/** `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF` → the heredoc it opens, or null. */
export function parseHeredocMarker(word: string): HeredocBody | null {
  const groups = HEREDOC_WORD.exec(word);
  if (!groups) return null;
  const rest = groups[3] as string;
  if (rest.length === 0) return null;
  try {
    const plain = expandWord(rest, new Map(), { escapeToken: '\\', skipUnsetEnv: true }).words;
    if (plain.length !== 1) return null;
    const raw = expandWord(rest, new Map(), { escapeToken: '\\', rawQuotes: true, skipUnsetEnv: true }).words;
    const quotes = (s: string): number => s.split("'").length + s.split('"').length - 2;
    const name = plain[0] as string;
    return { name, content: '', expand: quotes(name) === quotes(raw[0] ?? ''), chomp: groups[2] === '-', fd: Number(groups[1] || 0) };
  } catch {
    return null;
  }
}

/** `<<-` bodies lose the leading tabs of every line. */
export const chompHeredoc = (content: string): string => content.replace(/^\t+/gm, '');

export function splitCommand(line: string): { keyword: string; flags: string[]; rest: string } {
  const trimmed = line.trim();
  const match = /[\t\v\f\r ]+/.exec(trimmed);
  if (!match) return { keyword: trimmed, flags: [], rest: '' };
  const { flags, rest } = extractBuilderFlags(trimmed.slice(match.index + match[0].length));
  return { keyword: trimmed.slice(0, match.index), flags, rest: rest.trim() };
}

/** RUN, COPY and ADD (also as ONBUILD triggers) take heredocs, except in the JSON form. */
function canContainHeredoc(keyword: string, rest: string): boolean {
  if (keyword === 'ONBUILD') {
    const trigger = splitCommand(rest);
    return HEREDOC_KEYWORDS.has(trigger.keyword.toUpperCase()) && !isJsonForm(trigger.rest);
  }
  return HEREDOC_KEYWORDS.has(keyword) && !isJsonForm(rest);
}

function isJsonForm(rest: string): boolean {
  try {
    return parseJsonArray(rest) !== null;
  } catch {
    return true;
  }
}

function readInstruction(start: { line: number; character: number }, lines: string[], escapeToken: string, problems: SourceProblem[]): InstructionSource {
  let index = start.line;
  const first = trimContinuation(trimNewline(lines[index] ?? '').slice(start.character), escapeToken);
  let logical = first.text;
  let continues = first.continues;
  let emptyContinuationLine = false;
  const segments: LineSegment[] = [];
  while (continues && index + 1 < lines.length) {
    index++;
    const raw = trimNewline(lines[index] as string);
    if (COMMENT.test(raw)) continue;
    if (raw.trim() === '') {
      emptyContinuationLine = true;
      continue;
    }
    const next = trimContinuation(raw, escapeToken);
    segments.push({ offset: logical.length, line: index + 1, column: 1 });
    logical += next.text;
    continues = next.continues;
  }
  const { keyword, flags, rest } = splitCommand(logical);
  const upper = keyword.toUpperCase();
  const source: InstructionSource = {
    keyword: upper,
    rawKeyword: keyword,
    line: start.line + 1,
    column: start.character + 1,
    endLine: index + 1,
    original: logical.trim(),
    flags,
    rest,
    heredocs: [],
    emptyContinuationLine,
    segments,
  };
  if (canContainHeredoc(upper, rest) && logical.includes('<<')) {
    for (const doc of heredocsInLine(logical)) {
      let terminated = false;
      while (index + 1 < lines.length) {
        index++;
        const raw = lines[index] as string;
        let candidate = trimNewline(raw);
        if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === doc.name) {
          terminated = true;
          break;
        }
        doc.content += index + 1 < lines.length || raw.endsWith('\n') ? raw + '\n' : raw;
      }
      if (!terminated) {
        problems.push({ line: source.line, column: source.column, instruction: upper, message: `unterminated heredoc <<${doc.name}: no line "${doc.name}" closes it before the end of the file`, rule: 'UnterminatedHeredoc' });
        break;
      }
      source.heredocs.push(doc);
    }
    source.endLine = index + 1;
  }
  return source;
}

/**
 * dockerfile-ast reads directives a little differently from BuildKit (a shebang line, an unknown
 * directive before `escape`, spacing). When the escape tokens disagree, the leading comment lines
 * are rewritten (same line count) so that dockerfile-ast splits instructions with BuildKit's token.
 */
function withCanonicalDirectives(lines: readonly string[], escapeToken: string): string {
  const out = [...lines];
  for (let i = 0; i < out.length; i++) {
    const trimmed = (out[i] as string).trim();
    if (trimmed === '') continue;
    if (!trimmed.startsWith('#')) break;
    out[i] = '#';
  }
  if (escapeToken === '`') out[0] = '# escape=`';
  return out.join('\n');
}

/** Parses a Dockerfile with dockerfile-ast and reads each instruction as BuildKit would. */
export function readDockerfile(text: string): ParsedDockerfile {
  const content = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = content.split('\n');
  const directives = readDirectives(lines);
  let ast = DockerfileParser.parse(content);
  if (ast.getEscapeCharacter() !== directives.escapeToken) ast = DockerfileParser.parse(withCanonicalDirectives(lines, directives.escapeToken));
  const escapeToken = directives.escapeToken;
  const problems = [...directives.problems];
  const instructions: InstructionSource[] = [];
  let consumedUpTo = -1;
  const read = (start: { line: number; character: number }): void => {
    const source = readInstruction(start, lines, escapeToken, problems);
    consumedUpTo = source.endLine - 1;
    instructions.push(source);
  };
  /** Lines before `end` that BuildKit reads as instructions but dockerfile-ast took as part of another. */
  const readGap = (end: number): void => {
    for (let line = consumedUpTo + 1; line < end; line = Math.max(line + 1, consumedUpTo + 1)) {
      const text = trimNewline(lines[line] as string);
      const character = text.search(/\S/);
      if (character >= 0 && text[character] !== '#') read({ line, character });
    }
  };
  for (const instruction of ast.getInstructions()) {
    const start = instruction.getInstructionRange().start;
    // A line that dockerfile-ast saw as an instruction but BuildKit reads as part of the previous one.
    if (start.line <= consumedUpTo) continue;
    readGap(start.line);
    if (start.line <= consumedUpTo) continue;
    read(start);
  }
  readGap(lines.length);
  const parsed: ParsedDockerfile = { escapeToken, instructions, problems };
  if (directives.syntax !== undefined) parsed.syntax = directives.syntax;
  if (directives.check !== undefined) parsed.check = directives.check;
  return parsed;
}
