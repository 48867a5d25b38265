import { once } from 'node:events';
import { Parser, type ReadEntry } from 'tar';
import type { ContextSource, FetchLimits, LoadedContext } from '../../domain/build-context.ts';
import { digestOfUpload } from '../../domain/build-context-service.ts';
import { type ContextEntry, ContextIndex, keptEntries, withImplicitDirs } from '../../domain/context-index.ts';
import { contextRelativePath } from '../../domain/context-path.ts';
import type { Digest } from '../../domain/digest.ts';
import { DockerignoreMatcher } from '../../domain/dockerignore.ts';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from '../../domain/errors.ts';
import { parseHttpUrl } from '../../domain/http-context.ts';
import { IndexedContextFiles, locateDockerfile } from '../../domain/indexed-context.ts';
import { type NetworkPolicy, redactUrl } from '../../domain/network-policy.ts';
import type { RemoteFiles } from '../../domain/remote-files.ts';
import type { BlobStore } from '../../ports/blob-store.ts';
import type { ContextLoader } from '../../ports/context-loader.ts';
import { decompressed } from './decompress.ts';

type TarballRequest = Extract<ContextSource, { kind: 'tarball' }>;

/** .tar, .tar.gz and .tar.zst contexts, by URL or upload: every member streamed into the blob store. */
export class TarballContextLoader implements ContextLoader<TarballRequest> {
  constructor(
    private readonly blobs: BlobStore,
    private readonly remote: RemoteFiles,
    private readonly policy: NetworkPolicy,
    private readonly limits: FetchLimits,
  ) {}

  async load(request: TarballRequest, signal: AbortSignal): Promise<LoadedContext> {
    let archive: Digest;
    let shown: string;
    if ('url' in request) {
      const url = parseHttpUrl(request.url, this.policy);
      shown = redactUrl(url);
      archive = (await this.remote.fetch(url, { signal, shownAs: shown })).digest;
    } else {
      archive = digestOfUpload(request.uploadId);
      shown = `uploaded archive ${request.uploadId}`;
      if (!(await this.blobs.stat(archive))) {
        throw new NotFoundError(
          `${shown} is not in the fetcher's cache (evicted or never uploaded); upload it again`,
        );
      }
    }
    const reader = await this.blobs.read(archive, { signal });
    const entries = withImplicitDirs([
      ...(await this.readMembers(decompressed(reader.chunks, shown, signal), shown, signal)).values(),
    ]);
    const all = new ContextIndex(entries);
    const { dockerfile, dockerfilePath, ignore, ignorePath } = locateDockerfile(
      all,
      request.dockerfilePath,
      shown,
    );
    const dockerfileText = dockerfile ? await this.text(dockerfile.digest!, signal) : '';
    const ignoreText = ignore ? await this.text(ignore.digest!, signal) : '';
    const matcher = DockerignoreMatcher.fromText(ignoreText);
    const kept = keptEntries(entries, matcher);
    return {
      kind: 'tarball',
      displayRoot: shown,
      dockerfile: dockerfileText,
      dockerfilePath,
      dockerignore: ignoreText,
      dockerignorePath: ignorePath,
      identity: `tarball\n${archive}\n${dockerfilePath}`,
      files: new IndexedContextFiles(new ContextIndex(kept), this.limits),
    };
  }

  private async text(digest: Digest, signal: AbortSignal): Promise<string> {
    const blob = await this.blobs.read(digest, { signal });
    if (blob.size > this.limits.maxDockerfileSize) {
      throw new ResourceExhaustedError(
        `the Dockerfile or .dockerignore is ${blob.size} bytes, over the ${this.limits.maxDockerfileSize}-byte limit`,
      );
    }
    const parts: Buffer[] = [];
    for await (const c of blob.chunks) parts.push(c);
    return Buffer.concat(parts).toString('utf8');
  }

  private async readMembers(
    data: AsyncIterable<Buffer>,
    shown: string,
    signal: AbortSignal,
  ): Promise<Map<string, ContextEntry>> {
    const entries = new Map<string, ContextEntry>();
    const parser = new Parser({ strict: true });
    let failure: unknown;
    let total = 0;
    // Members are handled one at a time, in archive order, each fully stored before the next.
    let chain = Promise.resolve();
    let current: ReadEntry | undefined;
    parser.on('entry', (entry: ReadEntry) => {
      current = entry;
      chain = chain
        .then(() => this.member(entry, entries, shown, signal))
        .then(
          () => {
            const e = entries.get(memberPath(entry.path));
            if (e?.type === 'file') total += e.size;
            if (entries.size > this.limits.maxFiles) {
              throw new ResourceExhaustedError(
                `${shown} has more than ${this.limits.maxFiles} members; raise the file-count limit`,
              );
            }
            if (total > this.limits.maxContextSize) {
              throw new ResourceExhaustedError(
                `${shown} unpacks to more than the context size limit of ${this.limits.maxContextSize} bytes`,
              );
            }
          },
          (err: unknown) => {
            failure ??= err;
            entry.resume();
          },
        )
        .catch((err: unknown) => {
          failure ??= err;
        });
    });
    parser.on(
      'error',
      (err: Error) =>
        (failure ??= new InvalidArgumentError(`${shown} is not a valid tar archive: ${err.message}`)),
    );
    const ended = once(parser, 'end');
    for await (const chunk of data) {
      if (failure) break;
      if (!parser.write(chunk)) await once(parser, 'drain');
    }
    if (!failure) {
      parser.end();
      await ended;
    } else {
      // Unblock a member still waiting for bytes that will never come.
      current?.destroy();
    }
    await chain;
    if (failure) throw failure;
    return entries;
  }

  private async member(
    entry: ReadEntry,
    entries: Map<string, ContextEntry>,
    shown: string,
    signal: AbortSignal,
  ): Promise<void> {
    const path = memberPath(entry.path);
    if (path === '.') {
      entry.resume();
      return;
    }
    const base = {
      path,
      mode: (entry.mode ?? 0o644) & 0o7777,
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtimeMs: entry.mtime?.getTime() ?? 0,
    };
    switch (entry.type) {
      case 'File':
      case 'OldFile':
      case 'ContiguousFile': {
        const blob = await this.blobs.ingest(entry, {
          maxSize: this.limits.maxFileSize,
          signal,
          label: `"${path}" in ${shown}`,
        });
        entries.set(path, { ...base, type: 'file', size: blob.size, digest: blob.digest });
        return;
      }
      case 'Directory':
        entries.set(path, { ...base, type: 'dir', size: 0 });
        break;
      case 'SymbolicLink':
        entries.set(path, { ...base, type: 'symlink', size: 0, linkTarget: entry.linkpath ?? '' });
        break;
      case 'Link': {
        const target = entries.get(memberPath(entry.linkpath ?? ''));
        if (target?.type !== 'file') {
          throw new InvalidArgumentError(
            `hard link "${path}" in ${shown} points at "${entry.linkpath}", which is not an earlier file of the archive`,
          );
        }
        entries.set(path, { ...target, ...base });
        break;
      }
      default:
        break; // devices, fifos: not context files, as with docker
    }
    entry.resume();
  }
}

/** A member's name as a context path; absolute names and '..' escapes are refused, naming the member. */
function memberPath(name: string): string {
  return contextRelativePath(name.replace(/^(\.\/)+/u, '') || '.', 'archive member');
}
