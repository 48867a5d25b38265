import { posix } from 'node:path';
import { BadPatternError, parseGoClass, regexLiteral, validateGoPattern } from './go-glob.ts';

// .dockerignore with Docker's semantics (moby/patternmatcher and its ignorefile
// reader): '#' comments only at the start of a line, whitespace trimmed, paths
// cleaned and made relative, '!' re-includes, '**' spans directories, and a
// path is excluded when it or any of its parent directories matches; the last
// matching pattern wins.

/** Go's filepath.Clean for '/'-separated paths. */
export function goClean(path: string): string {
  if (path === '') return '.';
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** Go's filepath.Dir: everything before the last '/', cleaned ("a/b/" → "a/b", unlike Node's dirname). */
export function goDir(path: string): string {
  return goClean(path.slice(0, path.lastIndexOf('/') + 1));
}

/** Reads a .dockerignore file into patterns exactly as Docker's ignorefile.ReadAll does. */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.replace(/^\uFEFF/u, '').split(/\r?\n/u);
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  }
  return patterns;
}

type MatchKind = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** One compiled pattern, mirroring patternmatcher's exact/prefix/suffix/regexp shortcuts. */
class IgnorePattern {
  readonly kind: MatchKind;
  private readonly regexp: RegExp | undefined;
  constructor(
    readonly cleaned: string,
    readonly exclusion: boolean,
  ) {
    const chars = [...cleaned];
    let source = '^';
    let kind: MatchKind = 'exact';
    for (let i = 0; i < chars.length;) {
      const ch = chars[i]!;
      if (ch === '*' && chars[i + 1] === '*') {
        const atStart = i === 0;
        i += 2;
        if (chars[i] === '/') i++;
        if (i >= chars.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            source += '.*';
            kind = 'regexp';
          }
        } else {
          source += '(.*/)?';
          kind = 'regexp';
        }
        if (atStart) kind = 'suffix';
      } else if (ch === '*') {
        source += '[^/]*';
        kind = 'regexp';
        i++;
      } else if (ch === '?') {
        source += '[^/]';
        kind = 'regexp';
        i++;
      } else if (ch === '\\') {
        const next = chars[i + 1];
        if (next === undefined) {
          source += '\\\\';
          i++;
        } else {
          source += regexLiteral(next);
          kind = 'regexp';
          i += 2;
        }
      } else if (ch === '[') {
        const cls = parseGoClass(cleaned, chars, i + 1);
        source += cls.source;
        kind = 'regexp';
        i = cls.next;
      } else {
        source += regexLiteral(ch);
        i++;
      }
    }
    this.kind = kind;
    this.regexp = kind === 'regexp' ? new RegExp(`${source}$`, 'u') : undefined;
  }

  match(path: string): boolean {
    switch (this.kind) {
      case 'exact':
        return path === this.cleaned;
      case 'prefix':
        return path.startsWith(this.cleaned.slice(0, -2));
      case 'suffix': {
        const suffix = this.cleaned.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      case 'regexp':
        return this.regexp!.test(path);
    }
  }
}

export class DockerignoreMatcher {
  private readonly patterns: IgnorePattern[] = [];
  readonly hasExclusions: boolean;
  /** No '!' pattern has wildcards (beyond a trailing "/*" or "/**"): fsutil's condition for skipping excluded directories. */
  private readonly onlyPrefixExceptions: boolean;

  constructor(readonly source: string[]) {
    for (const raw of source) {
      let p = raw.trim();
      if (p === '') continue;
      p = goClean(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new BadPatternError(raw, 'illegal exclusion pattern "!"');
        exclusion = true;
        p = p.slice(1);
      }
      validateGoPattern(p);
      this.patterns.push(new IgnorePattern(p, exclusion));
    }
    this.hasExclusions = this.patterns.some((p) => p.exclusion);
    this.onlyPrefixExceptions = !this.patterns.some(
      (p) => p.exclusion && /[*[\]?^\\]/u.test(withoutTrailingGlob(p.cleaned)),
    );
  }

  static fromText(text: string): DockerignoreMatcher {
    return new DockerignoreMatcher(parseDockerignore(text));
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** True when the '/'-separated context-relative path is excluded (MatchesOrParentMatches). */
  excludes(path: string): boolean {
    if (path === '.' || this.patterns.length === 0) return false;
    const parent = goDir(path);
    const parentDirs = parent.split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(path);
      if (!match && parent !== '.') {
        for (let i = 1; i <= parentDirs.length && !match; i++) {
          match = pattern.match(parentDirs.slice(0, i).join('/'));
        }
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * Whether a walk may skip an excluded directory entirely, as BuildKit's
   * fsutil decides: only when no '!' pattern could re-include something below
   * it. A '!' pattern with wildcards (such as "!**.go") may match anywhere, so then
   * every excluded directory is walked.
   */
  canSkipExcludedDir(dir: string): boolean {
    if (!this.hasExclusions) return true;
    if (!this.onlyPrefixExceptions) return false;
    const dirSlash = `${dir}/`;
    return !this.patterns.some((p) => p.exclusion && `${withoutTrailingGlob(p.cleaned)}/`.startsWith(dirSlash));
  }
}

/** fsutil's patternWithoutTrailingGlob: "a/b/**" and "a/b/*" count as the prefix "a/b". */
function withoutTrailingGlob(pattern: string): string {
  return pattern.replace(/\/\*\*$/u, '').replace(/\/\*$/u, '');
}
