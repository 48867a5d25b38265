import { createHash } from 'node:crypto';
import { constants, readFile as readFileCallback, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, readFile, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { ContextFiles, ContextSource, FetchLimits, LoadedContext, SelectOptions } from '../../domain/build-context.ts';
import {
  type ContextEntry,
  ContextIndex,
  type SourceMatch,
  withParentDirs,
} from '../../domain/context-index.ts';
import { contextRelativePath } from '../../domain/context-path.ts';
import type { Digest } from '../../domain/digest.ts';
import { DockerignoreMatcher } from '../../domain/dockerignore.ts';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
} from '../../domain/errors.ts';
import { SingleFlight } from '../../domain/single-flight.ts';
import type { BlobStore } from '../../ports/blob-store.ts';
import type { ContextLoader } from '../../ports/context-loader.ts';

type LocalRequest = Extract<ContextSource, { kind: 'local' }>;

export interface LocalContextOptions {
  /** When non-empty, local contexts must lie under one of these directories. */
  allowedRoots: string[];
}

/** A directory on the fetcher's host, walked once with .dockerignore applied; blobs made on demand. */
export class LocalContextLoader implements ContextLoader<LocalRequest> {
  // Same file (device, inode, size, mtime) → same digest: repeat listings don't re-read.
  private readonly digests = new Map<string, Digest>();
  private readonly flights = new SingleFlight<Digest>();

  constructor(
    private readonly blobs: BlobStore,
    private readonly limits: FetchLimits,
    private readonly options: LocalContextOptions,
  ) {}

  async load(request: LocalRequest, signal: AbortSignal): Promise<LoadedContext> {
    if (!isAbsolute(request.path)) {
      throw new InvalidArgumentError(
        `local context path ${JSON.stringify(request.path)} must be absolute (it is read on the fetcher's host)`,
      );
    }
    const root = await realpath(request.path).catch(() => {
      throw new NotFoundError(`local context directory ${request.path} does not exist on the fetcher's host`);
    });
    if (!(await stat(root)).isDirectory())
      throw new InvalidArgumentError(`local context ${request.path} is not a directory`);
    if (!this.allowed(root)) {
      throw new PermissionDeniedError(
        `local context ${root} is outside the fetcher's allowed roots (${this.options.allowedRoots.join(', ')})`,
      );
    }
    // As with docker -f, the Dockerfile may be outside the context; relative paths are inside it.
    const requested = request.dockerfilePath || 'Dockerfile';
    const dockerfileAbs = isAbsolute(requested)
      ? requested
      : join(root, contextRelativePath(requested, 'Dockerfile'));
    // With allowed roots set, the Dockerfile (wherever it points) must lie under one as well.
    const dockerfileReal = await realpath(dockerfileAbs).catch(() => dockerfileAbs);
    if (!this.allowed(dockerfileReal)) {
      throw new PermissionDeniedError(
        `Dockerfile ${dockerfileAbs} is outside the fetcher's allowed roots (${this.options.allowedRoots.join(', ')})`,
      );
    }
    const dockerfile = await readSmallFile(dockerfileAbs, this.limits.maxDockerfileSize, 'Dockerfile');
    if (dockerfile === undefined) throw new NotFoundError(`Dockerfile ${dockerfileAbs} does not exist`);
    const insideRel = relative(root, dockerfileAbs);
    const dockerfilePath = insideRel.startsWith('..') || isAbsolute(insideRel) ? dockerfileAbs : insideRel;

    let dockerignore = '';
    let dockerignorePath = '';
    for (const candidate of [`${dockerfileAbs}.dockerignore`, join(root, '.dockerignore')]) {
      const text = await readSmallFile(candidate, this.limits.maxDockerfileSize, '.dockerignore');
      if (text !== undefined) {
        dockerignore = text;
        const rel = relative(root, candidate);
        dockerignorePath = rel.startsWith('..') ? candidate : rel;
        break;
      }
    }
    const matcher = DockerignoreMatcher.fromText(dockerignore);
    const entries = await walk(root, matcher, this.limits, signal);
    const index = new ContextIndex(entries);
    const fingerprint = createHash('sha256');
    for (const e of entries)
      fingerprint.update(`${e.path}\0${e.type}\0${e.size}\0${e.mode}\0${e.mtimeMs}\0${e.linkTarget ?? ''}\n`);
    return {
      kind: 'local',
      displayRoot: root,
      dockerfile,
      dockerfilePath,
      dockerignore,
      dockerignorePath,
      identity: `local\n${root}\n${dockerfilePath}\n${dockerfile}\n${dockerignore}\n${fingerprint.digest('hex')}`,
      files: new LocalContextFiles(root, index, this, this.limits),
    };
  }

  private allowed(path: string): boolean {
    const roots = this.options.allowedRoots;
    return (
      roots.length === 0 || roots.some((a) => path === a || path.startsWith(a.endsWith(sep) ? a : a + sep))
    );
  }

  /** Digest of a context file, storing its blob; refuses a file changed or swapped since the walk. */
  digestOf(root: string, entry: ContextEntry, signal?: AbortSignal): Promise<Digest> {
    const abs = join(root, entry.path);
    const key = `${abs}\0${entry.size}\0${entry.mtimeMs}`;
    const known = this.digests.get(key);
    if (known)
      return this.blobs.stat(known).then((b) => b?.digest ?? this.ingest(key, root, abs, entry, signal));
    return this.ingest(key, root, abs, entry, signal);
  }

  // Directories' real paths, checked once per directory for a short while rather than once per file.
  private readonly realDirs = new Map<string, { real: string; at: number }>();

  private async realDir(dir: string): Promise<string> {
    const known = this.realDirs.get(dir);
    if (known && Date.now() - known.at < 2000) return known.real;
    const real = await realpath(dir);
    if (this.realDirs.size > 10_000) this.realDirs.clear();
    this.realDirs.set(dir, { real, at: Date.now() });
    return real;
  }

  private ingest(
    key: string,
    root: string,
    abs: string,
    entry: ContextEntry,
    signal?: AbortSignal,
  ): Promise<Digest> {
    return this.flights.run(key, async () => {
      const parent = await this.realDir(dirname(abs));
      if (parent !== root && !parent.startsWith(root + sep)) {
        throw new InvalidArgumentError(
          `source "${entry.path}" now resolves outside the build context; refusing to read it`,
        );
      }
      const label = `context file "${entry.path}"`;
      const maxSize = this.limits.maxFileSize;
      const changed = (err?: NodeJS.ErrnoException) =>
        new FailedPreconditionError(
          err
            ? `context file "${entry.path}" cannot be read (${err.code}): it changed since the context was resolved; resolve it again`
            : `context file "${entry.path}" changed since the context was resolved; resolve it again`,
        );
      let digest: Digest;
      if (entry.size <= SMALL_FILE) {
        // Most of a context: one read through plain descriptors (FileHandles cost more than the I/O here).
        const data = await readFileNoFollow(abs).catch((err: NodeJS.ErrnoException) => {
          throw changed(err);
        });
        if (data.length !== entry.size) throw changed();
        digest = (await this.blobs.put(data, { maxSize, label })).digest;
      } else {
        const handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW).catch(
          (err: NodeJS.ErrnoException) => {
            throw changed(err);
          },
        );
        try {
          const st = await handle.stat();
          if (!st.isFile() || st.size !== entry.size) throw changed();
          digest = (await this.blobs.ingest(readListedBytes(handle, entry.size, changed), { maxSize, signal, label }))
            .digest;
        } finally {
          await handle.close();
        }
      }
      if (this.digests.size > 500_000) this.digests.clear();
      this.digests.set(key, digest);
      return digest;
    });
  }
}

class LocalContextFiles implements ContextFiles {
  constructor(
    private readonly root: string,
    private readonly index: ContextIndex,
    private readonly loader: LocalContextLoader,
    private readonly limits: FetchLimits,
  ) {}

  async list(patterns: string[], excludes: string[], signal?: AbortSignal, options?: SelectOptions): Promise<SourceMatch[]> {
    const matches = this.index.select(patterns, excludes, this.limits, options);
    const files = matches.flatMap((m) => m.files).filter((f) => f.type === 'file');
    const tooLarge = files.find((f) => f.size > this.limits.maxFileSize);
    if (tooLarge) {
      throw new ResourceExhaustedError(
        `context file "${tooLarge.path}" is ${tooLarge.size} bytes, over the file size limit of ${this.limits.maxFileSize}; exclude it in .dockerignore or raise --max-file-size`,
      );
    }
    let next = 0;
    // A few files at a time: enough to overlap I/O, few enough to stay gentle on shared disks.
    const worker = async () => {
      while (next < files.length) {
        const f = files[next++]!;
        f.digest = await this.loader.digestOf(this.root, { ...f, path: f.realPath }, signal);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return matches;
  }
}

const SMALL_FILE = 1024 * 1024;

/**
 * The listed size's bytes, read through the open handle. (A ReadStream on the
 * handle's fd closes that fd when destroyed early, and the handle's own close
 * then fails with EBADF.)
 */
async function* readListedBytes(
  handle: FileHandle,
  size: number,
  changed: () => Error,
): AsyncGenerator<Buffer> {
  for (let at = 0; at < size; ) {
    const buffer = Buffer.allocUnsafe(Math.min(SMALL_FILE, size - at));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
    if (bytesRead === 0) throw changed();
    at += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/** readFile that refuses to follow a symlink swapped in as the last path component. */
// Node accepts numeric open flags here; its typings only admit strings.
const NO_FOLLOW = (constants.O_RDONLY | constants.O_NOFOLLOW) as unknown as string;
const readFileNoFollow = (path: string): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    readFileCallback(path, { flag: NO_FOLLOW }, (err: NodeJS.ErrnoException | null, data: Buffer) =>
      err ? reject(err) : resolve(data),
    ),
  );

/** Walks the context without following symlinks, skipping what .dockerignore excludes. */
async function walk(
  root: string,
  ignore: DockerignoreMatcher,
  limits: FetchLimits,
  signal: AbortSignal,
): Promise<ContextEntry[]> {
  const entries: ContextEntry[] = [];
  // Excluded directories walked for the sake of a '!' exception: listed only if something below is kept.
  const excludedDirs = new Map<string, ContextEntry>();
  let total = 0;
  const visit = async (relDir: string): Promise<void> => {
    signal.throwIfAborted();
    const names = await readdir(relDir === '.' ? root : join(root, relDir)).catch(unreadable(relDir));
    const subdirs: string[] = [];
    await Promise.all(
      names.map(async (name) => {
        const rel = relDir === '.' ? name : `${relDir}/${name}`;
        const st = await lstat(join(root, rel)).catch(unreadable(rel));
        const excluded = ignore.excludes(rel);
        if (st.isDirectory()) {
          if (excluded && ignore.canSkipExcludedDir(rel)) return;
          subdirs.push(rel);
          if (excluded) {
            excludedDirs.set(rel, { path: rel, type: 'dir', size: 0, ...ownership(st) });
            return;
          }
        } else if (excluded) return;
        if (!st.isDirectory() && !st.isFile() && !st.isSymbolicLink()) return; // sockets, fifos, devices: not context files
        if (entries.length >= limits.maxFiles) {
          throw new ResourceExhaustedError(
            `context ${root} has more than ${limits.maxFiles} files; add a .dockerignore or raise the file-count limit`,
          );
        }
        if (st.isFile()) {
          total += st.size;
          if (total > limits.maxContextSize) {
            throw new ResourceExhaustedError(
              `context ${root} is larger than the context size limit of ${limits.maxContextSize} bytes; add a .dockerignore`,
            );
          }
        }
        entries.push({
          path: rel,
          type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file',
          size: st.isFile() ? st.size : 0,
          ...ownership(st),
          linkTarget: st.isSymbolicLink() ? await readlink(join(root, rel)) : undefined,
        });
      }),
    );
    for (const d of subdirs) await visit(d);
  };
  await visit('.');
  return excludedDirs.size > 0 ? withParentDirs(entries, (dir) => excludedDirs.get(dir)) : entries;
}

function ownership(st: Stats): { mode: number; uid: number; gid: number; mtimeMs: number } {
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs };
}

function unreadable(rel: string): (err: NodeJS.ErrnoException) => never {
  return (err) => {
    throw new FailedPreconditionError(
      `cannot read "${rel}" in the build context (${err.code ?? err.message}); fix its permissions or exclude it in .dockerignore`,
    );
  };
}

async function readSmallFile(path: string, max: number, what: string): Promise<string | undefined> {
  const st = await stat(resolve(path)).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isFile()) throw new InvalidArgumentError(`${what} ${path} is not a regular file`);
  if (st.size > max)
    throw new ResourceExhaustedError(`${what} ${path} is ${st.size} bytes, over the ${max}-byte limit`);
  return readFile(path, 'utf8');
}
