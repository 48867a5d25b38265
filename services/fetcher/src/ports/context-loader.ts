import type { ContextSource, LoadedContext } from '../domain/build-context.ts';

/** Loads one kind of context (local, http, git, tarball) into an index or a URL root. */
export interface ContextLoader<R extends ContextSource = ContextSource> {
  load(request: R, signal: AbortSignal): Promise<LoadedContext>;
}
