import type { Digest } from './digest.ts';
import { DockerignoreMatcher, goDir } from './dockerignore.ts';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from './errors.ts';
import { contextRelativePath, resolveLinkInContext } from './context-path.ts';
import { goMatch, hasGlobMeta, validateGoPattern } from './go-glob.ts';
import { selectWithParents } from './copy-parents.ts';

export type EntryType = 'file' | 'dir' | 'symlink';

/** One file, directory or symlink of a context, as indexed (before or after its blob exists). */
export interface ContextEntry {
  path: string;
  type: EntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  digest?: Digest | undefined;
  linkTarget?: string | undefined;
}

/** A selected entry: where it is, and which match root (source) it came from. */
export interface SelectedEntry extends ContextEntry {
  /** The entry's own path in the index (differs from path when reached through a symlink). */
  realPath: string;
  matchRoot: string;
}

export interface SourceMatch {
  pattern: string;
  files: SelectedEntry[];
}

const MAX_LINK_HOPS = 40;

/** The file tree of a context, kept sorted so a directory's tree is one contiguous range. */
export class ContextIndex {
  private readonly byPath = new Map<string, ContextEntry>();
  private readonly sorted: string[];

  constructor(entries: Iterable<ContextEntry>) {
    for (const e of entries) this.byPath.set(e.path, e);
    this.sorted = [...this.byPath.keys()].sort(compareBytes);
  }

  get size(): number {
    return this.byPath.size;
  }

  get(path: string): ContextEntry | undefined {
    return this.byPath.get(path);
  }

  entries(): IterableIterator<ContextEntry> {
    return this.byPath.values();
  }

  /** Entries strictly below a directory, in lexical order. */
  tree(dir: string): ContextEntry[] {
    if (dir === '.') return this.sorted.map((p) => this.byPath.get(p)!);
    const prefix = `${dir}/`;
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.sorted[mid]!, prefix) < 0) lo = mid + 1;
      else hi = mid;
    }
    const out: ContextEntry[] = [];
    for (let i = lo; i < this.sorted.length && this.sorted[i]!.startsWith(prefix); i++) {
      out.push(this.byPath.get(this.sorted[i]!)!);
    }
    return out;
  }

  /**
   * Follows symlinks along a path the way COPY does, never leaving the
   * context. Returns the real in-context path, or throws naming the link.
   */
  resolve(path: string): string {
    const parts = path === '.' ? [] : path.split('/');
    let resolved = '.';
    let hops = 0;
    while (parts.length > 0) {
      const part = parts.shift()!;
      const candidate = resolved === '.' ? part : `${resolved}/${part}`;
      const entry = this.byPath.get(candidate);
      if (entry?.type === 'symlink') {
        if (++hops > MAX_LINK_HOPS)
          throw new InvalidArgumentError(`too many levels of symlinks resolving "${path}"`);
        const target = resolveLinkInContext(candidate, entry.linkTarget ?? '');
        if (target === undefined) {
          throw new InvalidArgumentError(
            `source "${path}" goes through symlink "${candidate}" -> "${entry.linkTarget}", which points outside the build context`,
          );
        }
        parts.unshift(...(target === '.' ? [] : target.split('/')));
        resolved = '.';
        continue;
      }
      resolved = candidate;
    }
    return resolved;
  }

  /**
   * Selects the entries ADD/COPY sources name (BuildKit semantics), minus --exclude patterns.
   * With `parents` the sources are COPY --parents patterns (see copy-parents.ts).
   */
  select(
    patterns: string[],
    excludes: string[],
    limits: { maxFiles: number },
    options: { parents?: boolean } = {},
  ): SourceMatch[] {
    const exclude = excludes.length > 0 ? new DockerignoreMatcher(excludes) : undefined;
    let count = 0;
    return patterns.map((pattern) => {
      const files: SelectedEntry[] = [];
      // `shown` is the entry's path as the source names it, `matchRoot` the source root it belongs to.
      const add = (e: ContextEntry, shown: string, matchRoot: string) => {
        const below =
          shown === matchRoot ? undefined : matchRoot === '.' ? shown : shown.slice(matchRoot.length + 1);
        if (exclude && (exclude.excludes(shown) || (below !== undefined && exclude.excludes(below)))) return;
        if (++count > limits.maxFiles) {
          throw new ResourceExhaustedError(
            `sources select more than ${limits.maxFiles} files; narrow the ADD/COPY sources or raise the file-count limit`,
          );
        }
        files.push({ ...e, path: shown, realPath: e.path, matchRoot });
      };
      if (options.parents) {
        const { pivot, entries } = selectWithParents(this, pattern);
        for (const { shown, entry } of entries) add(entry, shown, pivot);
        return { pattern, files };
      }
      const cleaned = contextRelativePath(pattern);
      const roots = hasGlobMeta(cleaned)
        ? this.globRoots(pattern, cleaned)
        : [this.literalRoot(pattern, cleaned)];
      for (const { shownAs, entry } of roots) {
        if (entry.type !== 'dir') {
          add(entry, shownAs, shownAs);
          continue;
        }
        if (shownAs !== '.') add(entry, shownAs, shownAs);
        for (const child of this.tree(entry.path)) {
          const tail = entry.path === '.' ? child.path : child.path.slice(entry.path.length + 1);
          add(child, shownAs === '.' ? tail : `${shownAs}/${tail}`, shownAs);
        }
      }
      return { pattern, files };
    });
  }

  /**
   * A glob match as BuildKit copies it: a symlink is followed (its target's
   * content or tree, under the link's name), within the context only.
   */
  private followed(path: string, pattern: string): ContextEntry {
    const entry = this.byPath.get(path)!;
    if (entry.type !== 'symlink') return entry;
    const real = this.resolve(path);
    const target = real === '.' ? rootEntry() : this.byPath.get(real);
    if (!target) {
      throw new NotFoundError(
        `source pattern "${pattern}" matches symlink "${path}" -> "${entry.linkTarget}", whose target is not in the build context (or is excluded by .dockerignore)`,
      );
    }
    return target;
  }

  private literalRoot(pattern: string, cleaned: string): { shownAs: string; entry: ContextEntry } {
    const real = this.resolve(cleaned);
    const entry = real === '.' ? rootEntry() : this.byPath.get(real);
    if (!entry) {
      throw new NotFoundError(
        `source "${pattern}" is not in the build context (or is excluded by .dockerignore)`,
      );
    }
    return { shownAs: cleaned, entry };
  }

  /**
   * fsutil's ResolveWildcards: the segments before the first one with a wildcard name a
   * base directory (symlinks followed); every path below it is matched whole with Go's
   * filepath.Match, so "*" never crosses "/" and "**" is just "*"; a matched directory
   * is taken whole. A missing base is NOT_FOUND; no match at all is an empty list.
   */
  private globRoots(pattern: string, cleaned: string): { shownAs: string; entry: ContextEntry }[] {
    const { base, rest } = splitWildcards(cleaned);
    // Only escaped wildcards (a\*b): Go takes the whole source as a literal path, backslash included.
    if (rest === '') return [this.literalRoot(pattern, cleaned)];
    validateGoPattern(rest);
    const baseReal = this.resolve(base);
    const baseEntry = baseReal === '.' ? rootEntry() : this.byPath.get(baseReal);
    if (baseEntry?.type !== 'dir') {
      throw new NotFoundError(
        `source pattern "${pattern}": "${base}" is not a directory of the build context (or is excluded by .dockerignore)`,
      );
    }
    const prefix = baseReal === '.' ? 0 : baseReal.length + 1;
    const roots: { shownAs: string; entry: ContextEntry }[] = [];
    let takenDir: string | undefined;
    for (const e of this.tree(baseReal)) {
      if (takenDir !== undefined && e.path.startsWith(takenDir)) continue;
      const rel = e.path.slice(prefix);
      if (!goMatch(rest, rel)) continue;
      roots.push({ shownAs: base === '.' ? rel : `${base}/${rel}`, entry: this.followed(e.path, pattern) });
      if (e.type === 'dir') takenDir = `${e.path}/`;
    }
    // BuildKit copies with AllowEmptyWildcard: a wildcard that matches nothing copies nothing.
    return roots;
  }
}

/**
 * The entries an ignore file keeps, plus the directories above each of them:
 * like BuildKit, a directory excluded by "docs" comes back (with its own mode)
 * when "!docs/README.md" keeps something below it, so "COPY docs" still works.
 */
export function keptEntries(entries: Iterable<ContextEntry>, ignore: DockerignoreMatcher): ContextEntry[] {
  const all = [...entries];
  const kept = all.filter((e) => !ignore.excludes(e.path));
  if (kept.length === all.length || !ignore.hasExclusions) return kept;
  const dirs = new Map(all.filter((e) => e.type === 'dir').map((e) => [e.path, e]));
  return withParentDirs(kept, (dir) => dirs.get(dir));
}

/** Adds every directory above an entry that is not listed itself, as `dirEntry` gives it (none: left out). */
export function withParentDirs(
  entries: ContextEntry[],
  dirEntry: (dir: string) => ContextEntry | undefined,
): ContextEntry[] {
  const present = new Set(entries.map((e) => e.path));
  const out = [...entries];
  for (const e of entries) {
    for (let dir = goDir(e.path); dir !== '.' && !present.has(dir); dir = goDir(dir)) {
      present.add(dir);
      const entry = dirEntry(dir);
      if (entry) out.push(entry);
    }
  }
  return out;
}

/**
 * Archives may list files without their directories ("tar -cf c.tar src/main.go"): such
 * directories exist all the same, as they do when docker unpacks the archive (0755, root).
 */
export function withImplicitDirs(entries: ContextEntry[]): ContextEntry[] {
  return withParentDirs(entries, (dir) => ({ path: dir, type: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 }));
}

/**
 * fsutil's splitWildcards: the path up to (not including) the first segment with an
 * unescaped '*', '?' or '[', and the rest: "src/*.go" gives base "src" and rest "*.go".
 */
export function splitWildcards(cleaned: string): { base: string; rest: string } {
  const segments = cleaned.split('/');
  const first = segments.findIndex(containsWildcards);
  if (first === -1) return { base: cleaned, rest: '' };
  return { base: first === 0 ? '.' : segments.slice(0, first).join('/'), rest: segments.slice(first).join('/') };
}

function containsWildcards(segment: string): boolean {
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

function rootEntry(): ContextEntry {
  return { path: '.', type: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 };
}

/** Byte-wise order (Go's sort.Strings), so '/' sorts as 0x2f and trees stay contiguous. */
function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
