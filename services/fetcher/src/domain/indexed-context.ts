import type { ContextFiles, FetchLimits, SelectOptions } from './build-context.ts';
import { ignoreFileCandidates } from './build-context.ts';
import type { ContextEntry, ContextIndex, SourceMatch } from './context-index.ts';
import { contextRelativePath } from './context-path.ts';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from './errors.ts';

/** Files of a context whose every blob was stored when it was resolved (git, tarball). */
export class IndexedContextFiles implements ContextFiles {
  constructor(
    private readonly index: ContextIndex,
    private readonly limits: FetchLimits,
  ) {}

  async list(patterns: string[], excludes: string[], _signal?: AbortSignal, options?: SelectOptions): Promise<SourceMatch[]> {
    return this.index.select(patterns, excludes, this.limits, options);
  }
}

/**
 * Finds the Dockerfile and the ignore file to use among a context's entries
 * (following in-context symlinks), before anything is filtered.
 */
export function locateDockerfile(
  index: ContextIndex,
  requestedPath: string,
  shownRoot: string,
): {
  /** Absent when none was asked for by path and the default is missing: a files-only context. */
  dockerfile: ContextEntry | undefined;
  dockerfilePath: string;
  ignore: ContextEntry | undefined;
  ignorePath: string;
} {
  const dockerfilePath = contextRelativePath(requestedPath || 'Dockerfile', 'Dockerfile');
  const dockerfile = index.get(index.resolve(dockerfilePath));
  // A context of files only (a stage's files, a repository for ADD) names no Dockerfile; its user says so.
  if (!dockerfile && !requestedPath) return { dockerfile: undefined, dockerfilePath: '', ignore: undefined, ignorePath: '' };
  if (!dockerfile) throw new NotFoundError(`Dockerfile "${dockerfilePath}" is not in ${shownRoot}`);
  if (dockerfile.type !== 'file')
    throw new InvalidArgumentError(`Dockerfile "${dockerfilePath}" in ${shownRoot} is not a regular file`);
  for (const candidate of ignoreFileCandidates(dockerfilePath)) {
    const entry = index.get(candidate);
    if (entry?.type === 'file') return { dockerfile, dockerfilePath, ignore: entry, ignorePath: candidate };
  }
  return { dockerfile, dockerfilePath, ignore: undefined, ignorePath: '' };
}

/** Applies the file-count and total-size limits to a context's regular files. */
export function checkContextLimits(
  entries: Iterable<ContextEntry>,
  limits: FetchLimits,
  shownRoot: string,
): void {
  let files = 0;
  let total = 0;
  for (const e of entries) {
    if (++files > limits.maxFiles) {
      throw new ResourceExhaustedError(
        `${shownRoot} has more than ${limits.maxFiles} files; add a .dockerignore or raise the file-count limit`,
      );
    }
    if (e.type !== 'file') continue;
    if (e.size > limits.maxFileSize) {
      throw new ResourceExhaustedError(
        `"${e.path}" in ${shownRoot} is ${e.size} bytes, over the file size limit of ${limits.maxFileSize}`,
      );
    }
    total += e.size;
    if (total > limits.maxContextSize) {
      throw new ResourceExhaustedError(
        `${shownRoot} is larger than the context size limit of ${limits.maxContextSize} bytes; add a .dockerignore`,
      );
    }
  }
}
