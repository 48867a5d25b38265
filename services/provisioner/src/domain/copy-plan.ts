// Docker's COPY/ADD destination rules, as a pure function from the matched context files to
// guest operations: a trailing "/" or several sources make the destination a directory, a
// directory source copies its contents (not itself), relative destinations follow WORKDIR.
import { posix } from 'node:path';
import { InvalidArgumentError } from './errors.ts';

export type ContextFileType = 'file' | 'directory' | 'symlink';

/** One entry the fetcher listed for a source (paths relative to the context root). */
export interface ContextFile {
  path: string;
  type: ContextFileType;
  size: number;
  mode: number;
  digest: string;
  linkTarget: string;
  /** The directory source this entry belongs to, or the file itself. */
  matchRoot: string;
  mtime?: Date;
  /** Its owner in the source (a stage or image), kept when the copy preserves ownership. */
  owner?: FileOwner;
}

export interface FileOwner {
  uid: number;
  gid: number;
}

export interface CopySource {
  pattern: string;
  files: ContextFile[];
}

export interface CopyRequest {
  sources: CopySource[];
  destination: string;
  workingDir?: string;
  /** Explicit octal mode for everything copied; undefined keeps the source modes. */
  chmod?: number;
  extractArchives: boolean;
}

export type CopyOperation =
  | { kind: 'directory'; path: string; mode: number; mtime?: Date; owner?: FileOwner }
  | { kind: 'file'; path: string; mode: number; digest: string; size: number; mtime?: Date; extractInto?: string; owner?: FileOwner }
  | { kind: 'symlink'; path: string; linkTarget: string; owner?: FileOwner };

export interface CopyPlan {
  /** Directory that must exist (with its parents) before any operation. */
  baseDirectory: string;
  operations: CopyOperation[];
}

/** Whether the (single-file) destination already exists as a directory in the guest. */
export type DestinationProbe = (path: string) => Promise<boolean>;

/**
 * The fetcher never lists the context root itself: files of "COPY . /app", or of a COPY --parents
 * source without a "/./" pivot, name "." as their match root. Their paths below it are kept.
 */
const CONTEXT_ROOT: ContextFile = { path: '.', type: 'directory', size: 0, mode: 0o755, digest: '', linkTarget: '', matchRoot: '.' };

export async function planCopy(request: CopyRequest, isGuestDirectory: DestinationProbe): Promise<CopyPlan> {
  if (!request.destination) throw new InvalidArgumentError('COPY/ADD destination is empty');
  const workdir = request.workingDir || '/';
  const destination = posix.resolve(workdir, request.destination);
  const roots = new Map<string, ContextFile>();
  // A wildcard that matched nothing brings no files: like BuildKit (AllowEmptyWildcard), nothing to copy.
  for (const source of request.sources) {
    for (const file of source.files) {
      const root = source.files.find((f) => f.path === file.matchRoot) ?? (file.matchRoot === '.' ? CONTEXT_ROOT : undefined);
      if (!root) throw new InvalidArgumentError(`context file "${file.path}" names match root "${file.matchRoot}" which is not listed for source "${source.pattern}"`);
      roots.set(root.path, root);
    }
  }
  const fileRoots = [...roots.values()].filter((root) => root.type !== 'directory');
  const endsWithSlash = request.destination.endsWith('/') || request.destination.endsWith('/.');
  if (roots.size > 1 && !endsWithSlash) {
    throw new InvalidArgumentError(
      `when using COPY/ADD with more than one source file, the destination must be a directory and end with a "/": "${request.destination}" (sources ${[...roots.keys()].join(', ')})`,
    );
  }
  const singleFile = roots.size === 1 && fileRoots.length === 1;
  const destinationIsDirectory = !singleFile || endsWithSlash || (await isGuestDirectory(destination));
  const mode = (file: ContextFile): number => request.chmod ?? file.mode & 0o7777;
  const operations: CopyOperation[] = [];
  for (const source of request.sources) {
    for (const file of source.files) {
      const root = roots.get(file.matchRoot) as ContextFile;
      let target: string;
      if (root.type === 'directory') {
        if (file.path === root.path) continue; // a directory source copies its contents
        target = posix.join(destination, posix.relative(root.path, file.path));
      } else {
        target = destinationIsDirectory ? posix.join(destination, posix.basename(file.path)) : destination;
      }
      // Docker unpacks local archives only, never one downloaded from a URL
      const unpack = request.extractArchives && root === file && !isRemoteSource(source.pattern);
      operations.push(toOperation(file, target, mode(file), unpack ? destination : undefined));
    }
  }
  return { baseDirectory: destinationIsDirectory ? destination : posix.dirname(destination), operations };
}

function isRemoteSource(pattern: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(pattern);
}

function toOperation(file: ContextFile, path: string, mode: number, extractInto: string | undefined): CopyOperation {
  const owner = file.owner ? { owner: file.owner } : {};
  switch (file.type) {
    case 'directory':
      return { kind: 'directory', path, mode, ...(file.mtime ? { mtime: file.mtime } : {}), ...owner };
    case 'symlink':
      return { kind: 'symlink', path, linkTarget: file.linkTarget, ...owner };
    case 'file':
      if (!/^sha256:[0-9a-f]{64}$/.test(file.digest)) {
        throw new InvalidArgumentError(`context file "${file.path}" has no valid sha256 digest ("${file.digest}")`);
      }
      return {
        kind: 'file',
        path,
        mode,
        digest: file.digest,
        size: file.size,
        ...(file.mtime ? { mtime: file.mtime } : {}),
        ...(extractInto ? { extractInto } : {}),
        ...owner,
      };
  }
}
