import type { ContextEntry, ContextIndex } from './context-index.ts';
import { contextRelativePath } from './context-path.ts';
import { DockerignoreMatcher, goDir } from './dockerignore.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';
import { hasGlobMeta } from './go-glob.ts';

// COPY --parents as BuildKit's Dockerfile frontend turns it into a copy: the source is cut at
// its first "/./" into a pivot directory and an include pattern (no "/./": the pivot is the
// context root). fsutil then walks the pivot and keeps each path, relative to the pivot, that
// matches the pattern or lies under a directory that does (moby/patternmatcher: "**" spans
// directories), creating the directories above it on the way. Files keep their path below the
// pivot at the destination, which is why every entry's match root is the pivot.

export interface ParentsSelection {
  /** The pivot as the source spells it ('.' for the context root): each entry's match root. */
  pivot: string;
  entries: { shown: string; entry: ContextEntry }[];
}

export function selectWithParents(index: ContextIndex, source: string): ParentsSelection {
  const cut = source.indexOf('/./');
  const pivot = cut === -1 ? '.' : contextRelativePath(source.slice(0, cut) || '.');
  const include = contextRelativePath(cut === -1 ? source : source.slice(cut + 3));
  if (hasGlobMeta(pivot)) {
    throw new InvalidArgumentError(
      `COPY --parents source "${source}" has wildcards before its "/./" pivot, which kindling does not support yet; name the pivot directory literally`,
    );
  }
  const matcher = new DockerignoreMatcher([include]);
  const pivotReal = index.resolve(pivot);
  const pivotEntry = pivotReal === '.' ? undefined : index.get(pivotReal);
  if (pivotReal !== '.' && pivotEntry?.type !== 'dir') {
    throw new NotFoundError(
      `COPY --parents source "${source}": pivot "${pivot}" is not a directory of the build context (or is excluded by .dockerignore)`,
    );
  }
  const prefix = pivotReal === '.' ? 0 : pivotReal.length + 1;
  const shownAs = (rel: string) => (pivot === '.' ? rel : `${pivot}/${rel}`);
  const entries: ParentsSelection['entries'] = [];
  if (pivotEntry) entries.push({ shown: pivot, entry: pivotEntry });
  const listed = new Set<string>();
  for (const e of index.tree(pivotReal)) {
    const rel = e.path.slice(prefix);
    if (!matcher.excludes(rel)) continue; // "excludes" is patternmatcher's MatchesOrParentMatches
    // The directories between the pivot and a match come along, as fsutil creates them.
    const above: string[] = [];
    for (let dir = goDir(rel); dir !== '.' && !listed.has(dir); dir = goDir(dir)) above.unshift(dir);
    for (const dir of [...above, rel]) {
      listed.add(dir);
      const real = prefix === 0 ? dir : `${pivotReal}/${dir}`;
      entries.push({ shown: shownAs(dir), entry: dir === rel ? e : index.get(real)! });
    }
  }
  // As BuildKit (AllowEmptyWildcard): a pattern that matches nothing copies nothing.
  if (entries.length === (pivotEntry ? 1 : 0)) return { pivot, entries: [] };
  return { pivot, entries };
}
