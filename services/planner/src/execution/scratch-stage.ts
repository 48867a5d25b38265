/**
 * A FROM scratch stage, assembled without a VM: its COPY/ADD steps place files (from the context, a
 * URL or another stage/image, all read from the fetcher by digest) in a file tree by Docker's
 * destination rules, the tree is streamed as a tar and the vmm makes the ext4 image (mkfs.ext4 -d).
 * A scratch filesystem has no shell, so a RUN there fails, as it does in Docker.
 */
import { posix } from 'node:path';
import type { FileEntry } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { FileType } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { ImageMetadata as ProtoImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import { FailedPreconditionError, InvalidArgumentError } from '@kindling/runtime';
import type { PlannedStep, StepAction } from '../domain/plan.ts';
import { copySourceContext, gitSources, type CopyOriginServices } from './image-files.ts';
import { dataPadding, END_OF_ARCHIVE, entryHeader, type TarEntry } from './tar-writer.ts';

type CopyAction = Extract<StepAction, { kind: 'copy' }>;

interface TreeEntry extends TarEntry {
  digest?: string;
}

const ROOT_DIRECTORY: TreeEntry = { path: '', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date(0) };

function numericOwner(step: PlannedStep, chown: string | undefined): { uid: number; gid: number } | undefined {
  if (!chown) return undefined;
  const match = /^(\d+)(?::(\d+))?$/.exec(chown);
  if (!match) throw new FailedPreconditionError(`line ${step.line}: ${step.instruction} --chown=${chown}: a FROM scratch stage has no /etc/passwd to look names up in; give numeric ids (uid:gid)`);
  const uid = Number(match[1]);
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}

export class ScratchAssembly {
  private readonly tree = new Map<string, TreeEntry>([['', ROOT_DIRECTORY]]);

  constructor(
    private readonly services: CopyOriginServices,
  ) {}

  /** Streams the tree the steps made into a new image (mkfs.ext4 -d on the vmm). */
  async store(tag: string, metadata: ProtoImageMetadata, signal: AbortSignal): Promise<void> {
    await this.services.vmHost.createImageFromArchive({ image: tag, metadata, kernelId: '', overwrite: true, extraBytes: '0' }, this.archive(signal), signal);
  }

  /** Places one step's files in the tree. */
  async apply(step: PlannedStep, signal: AbortSignal): Promise<void> {
    const action = step.action;
    switch (action.kind) {
      case 'run':
        throw new FailedPreconditionError(`line ${step.line}: RUN in a FROM scratch stage: the stage has no shell or programs; build in a stage FROM a base OS and COPY --from it`);
      case 'workdir':
        this.ensureDirectory(action.path.replace(/^\/+/, ''), { uid: 0, gid: 0 });
        return;
      case 'copy':
        return this.copy(step, action, signal);
      case 'config':
        return;
    }
  }

  private async copy(step: PlannedStep, action: CopyAction, signal: AbortSignal): Promise<void> {
    if (action.instruction === 'ADD' && action.unpackArchives && action.sources.length > 0 && action.origin.kind === 'context') {
      throw new FailedPreconditionError(`line ${step.line}: ADD of a local file into a FROM scratch stage would extract archives, which kindling does not do without a VM yet; use COPY, or ADD in a base-OS stage and COPY --from it`);
    }
    if (action.inline.length > 0) throw new FailedPreconditionError(`line ${step.line}: a heredoc in a FROM scratch stage is not supported yet`);
    const owner = numericOwner(step, action.chown);
    const sources: { pattern: string; files: FileEntry[] }[] = [];
    if (action.sources.length > 0) {
      const { contextId, patterns } = await copySourceContext(this.services, step, action, signal);
      const listed = await this.services.context.listFiles(contextId, patterns, action.exclude, signal, { parents: action.parents });
      sources.push(...listed.sources.filter((s) => s.files.length > 0));
    }
    for (const { url, checksum } of action.urls) sources.push({ pattern: url, files: [await this.services.context.fetchUrl(url, checksum ?? '', signal)] });
    for (const git of action.git) sources.push(...(await gitSources(this.services.context, step, git, signal)).sources);
    const keepOwners = action.origin.kind !== 'context';
    const destination = posix.resolve(step.context.workdir || '/', action.destination).replace(/^\/+/, '');
    const roots = new Map<string, FileEntry | undefined>();
    for (const source of sources) for (const file of source.files) roots.set(file.matchRoot, source.files.find((f) => f.path === file.matchRoot));
    const endsWithSlash = action.destination.endsWith('/') || action.destination.endsWith('/.');
    if (roots.size > 1 && !endsWithSlash) {
      throw new InvalidArgumentError(`line ${step.line}: when using ${action.instruction} with more than one source file, the destination must be a directory and end with a "/"`);
    }
    const onlyRoot = roots.size === 1 ? [...roots.values()][0] : undefined;
    const singleFile = onlyRoot !== undefined && onlyRoot.type !== FileType.FILE_TYPE_DIRECTORY;
    const intoDirectory = !singleFile || endsWithSlash || this.tree.get(destination)?.type === 'directory';
    for (const source of sources) {
      for (const file of source.files) {
        const root = roots.get(file.matchRoot);
        const rootIsDirectory = root === undefined || root.type === FileType.FILE_TYPE_DIRECTORY;
        if (rootIsDirectory && file.path === file.matchRoot) continue; // a directory source copies its contents
        const target = rootIsDirectory
          ? posix.join(destination, posix.relative(file.matchRoot === '.' ? '' : file.matchRoot, file.path))
          : intoDirectory
            ? posix.join(destination, posix.basename(file.path))
            : destination;
        const ids = owner ?? (keepOwners ? { uid: file.uid, gid: file.gid } : { uid: 0, gid: 0 });
        this.place(step, target, file, ids, action.chmod);
      }
    }
    if (intoDirectory) this.ensureDirectory(destination, owner ?? { uid: 0, gid: 0 });
  }

  private place(step: PlannedStep, target: string, file: FileEntry, ids: { uid: number; gid: number }, chmod: number | undefined): void {
    if (target === '') return;
    const existing = this.tree.get(target);
    const mtime = file.mtime ?? new Date(0);
    const mode = chmod ?? file.mode & 0o7777;
    this.ensureDirectory(posix.dirname(target) === '.' ? '' : posix.dirname(target), { uid: 0, gid: 0 });
    if (file.type === FileType.FILE_TYPE_DIRECTORY) {
      if (existing && existing.type !== 'directory') throw new FailedPreconditionError(`line ${step.line}: cannot copy directory ${file.path} to /${target}: a file is there`);
      this.tree.set(target, { path: target, type: 'directory', mode, ...ids, mtime });
      return;
    }
    if (existing?.type === 'directory') throw new FailedPreconditionError(`line ${step.line}: cannot copy ${file.path} to /${target}: a directory is there`);
    if (file.type === FileType.FILE_TYPE_SYMLINK) this.tree.set(target, { path: target, type: 'symlink', mode: 0o777, ...ids, mtime, linkTarget: file.linkTarget });
    else this.tree.set(target, { path: target, type: 'file', mode, ...ids, mtime, size: Number(file.size), digest: file.digest });
  }

  private ensureDirectory(path: string, ids: { uid: number; gid: number }): void {
    if (path === '' || path === '.') return;
    const existing = this.tree.get(path);
    if (existing?.type === 'directory') return;
    if (existing) throw new FailedPreconditionError(`cannot make directory /${path} in the scratch stage: a file is there`);
    this.ensureDirectory(posix.dirname(path) === '.' ? '' : posix.dirname(path), { uid: 0, gid: 0 });
    this.tree.set(path, { path, type: 'directory', mode: 0o755, ...ids, mtime: new Date(0) });
  }

  private async *archive(signal: AbortSignal): AsyncGenerator<Buffer> {
    // parents before children; the root itself is not an entry
    const entries = [...this.tree.values()].filter((e) => e.path !== '').sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const entry of entries) {
      yield entryHeader(entry);
      if (entry.type !== 'file' || !entry.digest) continue;
      let written = 0;
      for await (const chunk of this.services.context.readBlob(entry.digest, signal)) {
        written += chunk.length;
        yield chunk;
      }
      if (written !== entry.size) throw new FailedPreconditionError(`blob ${entry.digest} of /${entry.path} had ${written} bytes, not ${entry.size}`);
      yield dataPadding(written);
    }
    yield END_OF_ARCHIVE;
  }
}
