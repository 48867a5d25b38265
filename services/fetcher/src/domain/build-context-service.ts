import { createHash } from 'node:crypto';
import { isAbsolute, normalize } from 'node:path';
import type { BlobInfo, BlobReader, BlobStore } from '../ports/blob-store.ts';
import type { ContextLoader } from '../ports/context-loader.ts';
import type {
  ContextFileStream,
  ContextKind,
  ContextSource,
  FetchedUrl,
  FetchLimits,
  ResolvedContext,
  SelectOptions,
} from './build-context.ts';
import type { SourceMatch } from './context-index.ts';
import { type Digest, parseDigest } from './digest.ts';
import {
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from './errors.ts';
import { fetchedEntry, parseHttpUrl, urlFileName } from './http-context.ts';
import { type NetworkPolicy, redactUrl } from './network-policy.ts';
import { abortable, type RemoteFiles } from './remote-files.ts';
import { SingleFlight } from './single-flight.ts';

export interface BuildContextServiceDeps {
  loaders: Record<ContextKind, ContextLoader>;
  blobs: BlobStore;
  remote: RemoteFiles;
  policy: NetworkPolicy;
  limits: FetchLimits;
  /** How many resolved contexts to remember; the least recently used are forgotten. */
  maxContexts?: number;
  /** Where ReadBlob's copy_to may put hand-off files; '' or absent: the hand-off is off. */
  handoffDir?: string;
}

export interface ListFilesResult {
  sources: SourceMatch[];
  totalSize: number;
}

/** The fetcher's use cases: resolve a context, list its files, fetch URLs, read and upload blobs. */
export class BuildContextService {
  private readonly contexts = new Map<string, ResolvedContext>();
  private readonly resolving = new SingleFlight<ResolvedContext>();
  private readonly maxContexts: number;

  constructor(private readonly deps: BuildContextServiceDeps) {
    this.maxContexts = deps.maxContexts ?? 1024;
  }

  /** Concurrent identical requests share one resolution (one clone, one download). */
  async resolve(request: ContextSource, signal: AbortSignal): Promise<ResolvedContext> {
    const key = JSON.stringify(request);
    // The shared resolution runs under the time limit only: one caller cancelling must not fail the others.
    const shared = this.resolving.run(key, () =>
      withTimeout(
        this.deps.limits.fetchTimeoutMs,
        new AbortController().signal,
        `resolving the ${request.kind} context ${describeSource(request)}`,
        async (s) => {
          const loaded = await this.deps.loaders[request.kind].load(request, s);
          const id = `ctx-${createHash('sha256').update(loaded.identity).digest('hex').slice(0, 32)}`;
          const resolved: ResolvedContext = { ...loaded, id };
          this.contexts.delete(id);
          this.contexts.set(id, resolved);
          for (const old of this.contexts.keys()) {
            if (this.contexts.size <= this.maxContexts) break;
            this.contexts.delete(old);
          }
          return resolved;
        },
      ),
    );
    return abortable(shared, signal);
  }

  get(contextId: string): ResolvedContext {
    const ctx = this.contexts.get(contextId);
    if (!ctx) {
      throw new NotFoundError(
        `context ${JSON.stringify(contextId)} is not known to this fetcher (expired or never resolved); resolve it again`,
      );
    }
    this.contexts.delete(contextId);
    this.contexts.set(contextId, ctx);
    return ctx;
  }

  async listFiles(
    contextId: string,
    patterns: string[],
    excludes: string[],
    signal: AbortSignal,
    options: SelectOptions = {},
  ): Promise<ListFilesResult> {
    const ctx = this.get(contextId);
    if (patterns.length === 0) throw new InvalidArgumentError('ListFiles needs at least one source pattern');
    const sources = await withTimeout(
      this.deps.limits.fetchTimeoutMs,
      signal,
      `listing files of ${ctx.displayRoot}`,
      (s) => ctx.files.list(patterns, excludes, s, options),
    );
    let totalSize = 0;
    for (const m of sources) for (const f of m.files) if (f.type === 'file') totalSize += f.size;
    return { sources, totalSize };
  }

  async fetchUrl(rawUrl: string, expectedDigest: string, signal: AbortSignal): Promise<FetchedUrl> {
    const url = parseHttpUrl(rawUrl, this.deps.policy);
    const expected = expectedDigest === '' ? undefined : parseDigest(expectedDigest);
    return withTimeout(this.deps.limits.fetchTimeoutMs, signal, `fetching ${redactUrl(url)}`, (s) =>
      fetchedEntry(urlFileName(url), url, this.deps.remote, s, undefined, expected),
    );
  }

  /**
   * One regular file of a context by path: streamed while it downloads where the
   * context supports it, else listed (stored) and read from the blob store.
   */
  async readContextFile(
    contextId: string,
    path: string,
    offset: number,
    signal: AbortSignal,
  ): Promise<ContextFileStream> {
    const ctx = this.get(contextId);
    if (offset !== 0 && ctx.files.stream) {
      throw new InvalidArgumentError(
        'a read by context and path starts at offset 0; resume by digest once the last message gave it',
      );
    }
    if (ctx.files.stream) return ctx.files.stream(path, signal);
    const [match] = await ctx.files.list([path], [], signal);
    const file = match?.files.find((f) => f.path === match.pattern || f.matchRoot === f.path);
    if (!file || file.type !== 'file' || !file.digest || match!.files.length !== 1) {
      throw new InvalidArgumentError(
        `"${path}" is not a single regular file of context ${contextId}; read directories file by file`,
      );
    }
    const blob = await this.deps.blobs.read(file.digest, { offset, signal });
    return { totalSize: blob.size, chunks: blob.chunks, digest: Promise.resolve(file.digest) };
  }

  /**
   * The cache hand-off to a consumer on this host: the blob copied (or, with `link`, hard-linked
   * read-only) to a new file under the configured hand-off directory, so its bytes never cross gRPC.
   */
  async copyBlobTo(digest: string, destination: string, link = false): Promise<{ digest: string; size: number; linked: boolean }> {
    const root = this.deps.handoffDir ?? '';
    if (root === '') throw new FailedPreconditionError('copy_to: the cache hand-off is off on this fetcher (set --handoff-dir to a directory its consumers share)');
    if (!isAbsolute(destination) || normalize(destination) !== destination || !destination.startsWith(`${normalize(root).replace(/\/+$/, '')}/`)) {
      throw new InvalidArgumentError(`copy_to "${destination}" must be a normalized absolute path under the hand-off directory ${root}`);
    }
    const parsed = parseDigest(digest);
    const info = await this.deps.blobs.copyTo(parsed, destination, { link });
    return { digest: info.digest, size: info.size, linked: info.linked };
  }

  readBlob(digest: string, offset: number, signal: AbortSignal): Promise<BlobReader> {
    return this.deps.blobs.read(parseDigest(digest), { offset, signal });
  }

  /** Stores an uploaded tarball; its id is its digest, so re-uploads are free to resolve. */
  async upload(
    fileName: string,
    chunks: AsyncIterable<Uint8Array>,
    signal: AbortSignal,
    announcedSize?: number,
  ): Promise<BlobInfo & { uploadId: string }> {
    if (!/\.(tar|tar\.gz|tgz|tar\.zst|tzst)$/iu.test(fileName)) {
      throw new InvalidArgumentError(
        `upload ${JSON.stringify(fileName)} is not a .tar, .tar.gz, .tgz or .tar.zst file`,
      );
    }
    const blob = await this.deps.blobs.ingest(chunks, {
      maxSize: this.deps.limits.maxContextSize,
      expectedSize: announcedSize,
      signal,
      label: `uploaded archive ${JSON.stringify(fileName)}`,
    });
    return { ...blob, uploadId: uploadIdOf(blob.digest) };
  }
}

/** Names a context source in errors, without credentials. */
function describeSource(request: ContextSource): string {
  switch (request.kind) {
    case 'local':
      return request.path;
    case 'http':
      return redactUrl(request.dockerfileUrl);
    case 'git':
      return redactUrl(request.url.split('#')[0]!);
    case 'tarball':
      return 'url' in request ? redactUrl(request.url) : request.uploadId;
  }
}

export function uploadIdOf(digest: Digest): string {
  return `upload-${digest.slice('sha256:'.length)}`;
}

export function digestOfUpload(uploadId: string): Digest {
  const m = /^upload-([0-9a-f]{64})$/u.exec(uploadId);
  if (!m)
    throw new InvalidArgumentError(
      `upload id ${JSON.stringify(uploadId)} is malformed; use the id UploadContext returned`,
    );
  return `sha256:${m[1]!}`;
}

/** Runs work under the caller's signal plus the fetch time limit, reporting the limit as UNAVAILABLE. */
async function withTimeout<T>(
  ms: number,
  signal: AbortSignal,
  what: string,
  work: (s: AbortSignal) => Promise<T>,
): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  const combined = AbortSignal.any([signal, timeout]);
  try {
    return await work(combined);
  } catch (err) {
    if (timeout.aborted && !signal.aborted) {
      throw new UnavailableError(
        `${what} took longer than the fetch time limit of ${Math.round(ms / 1000)} s`,
        { cause: err },
      );
    }
    if (signal.aborted && !(err instanceof DomainError)) {
      throw new DeadlineExceededError(`${what} was cancelled or ran past the client's deadline`, {
        cause: err,
      });
    }
    throw err;
  }
}
