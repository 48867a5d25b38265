import type { Digest } from './digest.ts';
import type { SelectedEntry, SourceMatch } from './context-index.ts';

export type ContextKind = 'local' | 'http' | 'git' | 'tarball';

/** Where a context comes from, as a client names it (the gRPC adapter converts to this). */
export type ContextSource =
  | { kind: 'local'; path: string; dockerfilePath: string }
  | { kind: 'http'; dockerfileUrl: string }
  | { kind: 'git'; url: string; dockerfilePath: string }
  | { kind: 'tarball'; url: string; dockerfilePath: string }
  | { kind: 'tarball'; uploadId: string; dockerfilePath: string };

/** One file's bytes, possibly still arriving, with its digest once all are in. */
export interface ContextFileStream {
  totalSize: number | undefined;
  chunks: AsyncIterable<Buffer>;
  digest: Promise<Digest>;
}

/** How sources are matched: `parents` for COPY --parents patterns. */
export interface SelectOptions {
  parents?: boolean;
}

/** Selects files of a resolved context by ADD/COPY sources, with their blobs made readable. */
export interface ContextFiles {
  list(patterns: string[], excludes: string[], signal?: AbortSignal, options?: SelectOptions): Promise<SourceMatch[]>;
  /** Streams one file as it arrives, where the context can do better than list-then-read. */
  stream?(path: string, signal?: AbortSignal): Promise<ContextFileStream>;
}

/** A context as a loader produced it; the service gives it an id and keeps it. */
export interface LoadedContext {
  kind: ContextKind;
  /** Where the context is, safe to show: credentials redacted. */
  displayRoot: string;
  dockerfile: string;
  dockerfilePath: string;
  dockerignore: string;
  dockerignorePath: string;
  gitCommit?: string | undefined;
  /** Identifies the content: equal seeds give equal context ids. */
  identity: string;
  files: ContextFiles;
}

export interface ResolvedContext extends LoadedContext {
  id: string;
}

/** A file fetched by absolute URL (ADD https://…). */
export interface FetchedUrl extends SelectedEntry {
  digest: Digest;
}

/** Limits applied to every context and fetch. */
export interface FetchLimits {
  maxFileSize: number;
  maxContextSize: number;
  maxFiles: number;
  maxDockerfileSize: number;
  /** Longest a single resolve or fetch may take end to end. */
  fetchTimeoutMs: number;
}

export const DEFAULT_LIMITS: FetchLimits = {
  maxFileSize: 8 * 1024 ** 3,
  maxContextSize: 16 * 1024 ** 3,
  maxFiles: 200_000,
  maxDockerfileSize: 1024 * 1024,
  fetchTimeoutMs: 15 * 60_000,
};

/**
 * The ignore files to try, in order: BuildKit's Dockerfile-specific
 * "<Dockerfile>.dockerignore" beside the Dockerfile wins over the context's
 * ".dockerignore".
 */
export function ignoreFileCandidates(dockerfilePath: string): string[] {
  return [`${dockerfilePath}.dockerignore`, '.dockerignore'];
}
