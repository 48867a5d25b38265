// Executes a COPY/ADD plan on a guest: blobs streamed from the fetcher, digest-checked, written
// to a temp name and renamed into place; --chown resolved in the guest; ADD archives extracted.
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { ArchiveDecoder } from '../ports/archive-decoder.ts';
import { isSelfHashed, type BlobSource } from '../ports/blob-source.ts';
import type { GuestConnection } from '../ports/guest-connector.ts';
import type { Sha256Hashing } from '../ports/sha256-hashing.ts';
import { detectCompression, looksLikeTar } from './archive-format.ts';
import { DigestCheckedStream, drain, inlineSha256Hashing, peek } from './byte-streams.ts';
import { planCopy, type CopyOperation, type CopyRequest, type FileOwner } from './copy-plan.ts';
import { FailedPreconditionError } from './errors.ts';
import { readGuestAccounts } from './guest-accounts.ts';
import { resolveOwner } from './guest-user.ts';

import { shellQuote } from './remote-command.ts';

const FILE_CONCURRENCY = 8;
const PARENT_MODE = 0o755;
const SYMLINK_CHOWN_BATCH = 200;
const MIB = 1024 * 1024;

/** Blobs the caller wrote to the VM's transfer disk, by digest: byte offsets (whole MiB) on the guest's device. */
export interface StagedTransferDisk {
  readonly device: string;
  readonly offsets: ReadonlyMap<string, number>;
}

export interface FileCopyRequest extends CopyRequest {
  /** --chown "user[:group]", resolved in the guest; empty keeps 0:0. */
  chown?: string;
  transferDisk?: StagedTransferDisk;
}

export interface CopySummary {
  filesWritten: number;
  directoriesCreated: number;
  symlinksCreated: number;
  bytesWritten: number;
  archivesExtracted: number;
  /** Files the guest read from the transfer disk rather than received through SSH. */
  filesFromTransferDisk: number;
}

type FileOperation = Extract<CopyOperation, { kind: 'file' }>;
type DirectoryOperation = Extract<CopyOperation, { kind: 'directory' }>;

export class FileCopy {
  /** Directories known to exist (or being created), shared by the concurrent file workers. */
  private readonly directories = new Map<string, Promise<void>>([['/', Promise.resolve()]]);
  private readonly summary: CopySummary = { filesWritten: 0, directoriesCreated: 0, symlinksCreated: 0, bytesWritten: 0, archivesExtracted: 0, filesFromTransferDisk: 0 };
  private owner = { uid: 0, gid: 0 };
  /** --chown was given: it wins over the owners the sources carry. */
  private chowned = false;
  private transferDisk: StagedTransferDisk | undefined;

  constructor(
    private readonly connection: GuestConnection,
    private readonly blobs: BlobSource,
    private readonly decoder: ArchiveDecoder,
    private readonly signal?: AbortSignal,
    private readonly sha256: Sha256Hashing = inlineSha256Hashing,
  ) {}

  async copy(request: FileCopyRequest): Promise<CopySummary> {
    this.transferDisk = request.transferDisk;
    if (request.chown) {
      const { passwd, group } = await readGuestAccounts(this.connection);
      this.owner = resolveOwner(request.chown, passwd, group);
      this.chowned = true;
    }
    // a destination that is a symlink to a directory receives the file inside, as Docker resolves it
    const plan = await planCopy(request, async (path) => {
      const type = (await this.connection.stat(path))?.type;
      return type === 'directory' || (type === 'symlink' && (await this.isDirectoryViaShell(path)));
    });
    await this.ensureDirectory(plan.baseDirectory);
    const created: DirectoryOperation[] = [];
    for (const operation of plan.operations) {
      if (operation.kind === 'directory' && (await this.createDirectory(operation.path, operation.mode, this.ownerOf(operation)))) created.push(operation);
    }
    const files = plan.operations.filter((operation): operation is FileOperation => operation.kind === 'file');
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        this.signal?.throwIfAborted();
        const operation = files[next++] as FileOperation;
        await (operation.extractInto ? this.extractOrCopy(operation) : this.writeFile(operation));
      }
    };
    await Promise.all(Array.from({ length: Math.min(FILE_CONCURRENCY, files.length) }, worker));
    const symlinks = plan.operations.filter((operation) => operation.kind === 'symlink');
    for (const operation of symlinks) {
      await this.ensureDirectory(posix.dirname(operation.path));
      await this.replaceNonDirectory(operation.path, { removeFile: true }); // SFTP symlink never replaces
      await this.connection.symlink(operation.linkTarget, operation.path);
      this.summary.symlinksCreated++;
    }
    // SFTP cannot chown a link itself (it follows it): chown -h in batches, one per owner
    const byOwner = new Map<string, string[]>();
    for (const link of symlinks) {
      const { uid, gid } = this.ownerOf(link);
      if (uid || gid) byOwner.set(`${uid}:${gid}`, [...(byOwner.get(`${uid}:${gid}`) ?? []), shellQuote(link.path)]);
    }
    for (const [owner, paths] of byOwner) {
      for (let i = 0; i < paths.length; i += SYMLINK_CHOWN_BATCH) {
        await this.runChecked(`chown -h ${owner} -- ${paths.slice(i, i + SYMLINK_CHOWN_BATCH).join(' ')}`, 'setting the owner of copied symlinks');
      }
    }
    // last: every entry written inside a directory moved its mtime (BuildKit, too, applies a created
    // directory's metadata after its contents); directories that were there already keep theirs
    // (setting a directory's times does not touch its parent's, so they go out together)
    await Promise.all(created.flatMap((d) => (d.mtime ? [this.connection.setTimes(d.path, d.mtime)] : [])));
    return this.summary;
  }

  private ensureDirectory(path: string): Promise<void> {
    let ready = this.directories.get(path);
    if (!ready) {
      ready = this.createMissingDirectory(path);
      this.directories.set(path, ready);
    }
    return ready;
  }

  private async createMissingDirectory(path: string): Promise<void> {
    await this.ensureDirectory(posix.dirname(path));
    const existing = await this.connection.stat(path);
    if (existing?.type === 'directory' || (existing?.type === 'symlink' && (await this.isDirectoryViaShell(path)))) return;
    if (existing) throw new FailedPreconditionError(`cannot copy into ${path}: it exists in the guest and is not a directory`);
    await this.makeDirectory(path, PARENT_MODE);
  }

  private ownerOf(operation: { owner?: FileOwner }): FileOwner {
    return this.chowned ? this.owner : (operation.owner ?? this.owner);
  }

  /** A directory of a copied tree: created with its source mode, or left as it is when present. Returns whether it was created. */
  private async createDirectory(path: string, mode: number, owner: FileOwner): Promise<boolean> {
    await this.ensureDirectory(posix.dirname(path));
    const existing = await this.connection.stat(path);
    if (existing && existing.type !== 'directory') throw new FailedPreconditionError(`cannot create directory ${path}: a non-directory exists there in the guest`);
    if (!existing) await this.makeDirectory(path, mode, owner);
    this.directories.set(path, Promise.resolve());
    return !existing;
  }

  private async makeDirectory(path: string, mode: number, owner: FileOwner = this.owner): Promise<void> {
    await this.connection.mkdir(path, mode);
    await this.connection.setOwner(path, owner.uid, owner.gid);
    await this.connection.setMode(path, mode); // mkdir's mode is filtered by the server's umask
    this.summary.directoriesCreated++;
  }

  private async writeFile(operation: FileOperation, content?: { stream: AsyncIterable<Buffer>; check: DigestCheckedStream }): Promise<void> {
    await this.ensureDirectory(posix.dirname(operation.path));
    const temp = posix.join(posix.dirname(operation.path), `.${posix.basename(operation.path)}.kindling-${randomBytes(4).toString('hex')}`);
    const fromDisk = !content && (await this.readFromTransferDisk(temp, operation));
    const check = fromDisk ? undefined : (content?.check ?? this.checkedBlob(operation));
    try {
      let bytes = operation.size;
      if (check) {
        bytes = await this.connection.writeFile(temp, operation.mode, content?.stream ?? check, operation.mtime);
        await check.verify(operation.size);
      }
      const owner = this.ownerOf(operation);
      await this.connection.setOwner(temp, owner.uid, owner.gid);
      if (operation.mode & 0o7000) await this.connection.setMode(temp, operation.mode); // chown cleared setuid/setgid
      await this.replaceNonDirectory(operation.path);
      await this.connection.rename(temp, operation.path);
      this.summary.filesWritten++;
      this.summary.bytesWritten += bytes;
      if (fromDisk) this.summary.filesFromTransferDisk++;
    } catch (error) {
      check?.discard();
      await this.connection.remove(temp).catch(() => {});
      throw error;
    }
  }

  /**
   * Has the guest copy a staged blob from its transfer disk into temp (O_DIRECT: a region rewritten
   * for a later COPY is never read from a stale page). False when it is not staged or the guest
   * could not read it (no dd, no device): then SSH carries the file, as without a disk.
   */
  private async readFromTransferDisk(temp: string, operation: FileOperation): Promise<boolean> {
    const offset = this.transferDisk?.offsets.get(operation.digest);
    if (!this.transferDisk || offset === undefined) return false;
    const file = shellQuote(temp);
    const mtime = operation.mtime ? ` && touch -m -d @${(operation.mtime.getTime() / 1000).toFixed(3)} -- ${file}` : '';
    // O_DIRECT both ways: the emulated guest CPU copies nothing, the hypervisor moves the blocks
    // (2-3x faster under TCG); a destination without O_DIRECT (tmpfs) takes the buffered write
    const dd = `dd if=${shellQuote(this.transferDisk.device)} of=${file} bs=1M skip=${offset / MIB} count=${Math.ceil(operation.size / MIB)} iflag=direct status=none`;
    const command =
      `{ ${dd} oflag=direct 2>/dev/null || ${dd}; }` +
      // dd stops short without failing at the device's end: a short read must not become zeros
      ` && test "$(stat -c %s -- ${file})" -ge ${operation.size} && truncate -s ${operation.size} -- ${file} && chmod ${(operation.mode & 0o7777).toString(8)} -- ${file}${mtime}`;
    try {
      await this.runChecked(command, `reading ${operation.path} from the transfer disk`);
      return true;
    } catch {
      this.signal?.throwIfAborted();
      await this.connection.remove(temp).catch(() => {});
      return false;
    }
  }

  private checkedBlob(operation: FileOperation): DigestCheckedStream {
    const source = this.blobs.read(operation.digest, this.signal);
    if (isSelfHashed(source)) return new DigestCheckedStream(source, operation.digest, operation.path);
    return new DigestCheckedStream(source, operation.digest, operation.path, this.sha256.start(operation.size));
  }

  /** Makes way for a file or symlink: a rename replaces a file by itself, a symlink creation does not. */
  private async replaceNonDirectory(path: string, options: { removeFile?: boolean } = {}): Promise<void> {
    const existing = await this.connection.stat(path);
    if (existing?.type === 'directory') throw new FailedPreconditionError(`cannot copy a file to ${path}: a directory exists there in the guest`);
    if (existing && (existing.type !== 'file' || options.removeFile)) await this.connection.remove(path);
  }

  /** ADD: a tar (plain, gzip, bzip2, xz) is unpacked into the destination, anything else copied. */
  private async extractOrCopy(operation: FileOperation): Promise<void> {
    const directory = operation.extractInto as string;
    const raw = this.checkedBlob(operation);
    const compressed = await peek(raw, 6);
    const format = detectCompression(compressed.head);
    const tar = await peek(format === 'none' ? compressed.stream : this.decoder.decompress(format, compressed.stream), 512);
    if (!looksLikeTar(tar.head)) {
      if (format === 'none') return this.writeFile(operation, { stream: tar.stream, check: raw });
      await drain(tar.stream).catch(() => {});
      raw.discard();
      return this.writeFile(operation); // compressed but not a tar: copy the original bytes
    }
    await this.ensureDirectory(directory);
    const staging = posix.join(directory, `.kindling-extract-${randomBytes(4).toString('hex')}`);
    try {
      // numeric ids from the headers, as Docker unpacks (not the names mapped through the guest's passwd)
      await this.runChecked(`mkdir -- ${shellQuote(staging)} && tar -x --numeric-owner -f - -C ${shellQuote(staging)}`, `extracting ${operation.path}`, tar.stream);
      await drain(tar.stream); // tar may stop at the end-of-archive blocks; the digest needs every byte
      await raw.verify(operation.size);
      const chown = this.owner.uid || this.owner.gid ? `chown -R -h ${this.owner.uid}:${this.owner.gid} -- ${shellQuote(staging)} && ` : '';
      await this.runChecked(
        // hard links, not copies: the staging dir is on the destination's filesystem
        `${chown}cd -- ${shellQuote(staging)} && find . -mindepth 1 -maxdepth 1 -exec cp -a -l --remove-destination -t ${shellQuote(directory)} -- {} +`,
        `moving the contents of ${operation.path} into ${directory}`,
      );
      this.summary.archivesExtracted++;
    } finally {
      raw.discard();
      await this.connection.run(`rm -rf -- ${shellQuote(staging)}`, { onOutput: () => {} }).catch(() => {});
    }
  }

  private async runChecked(command: string, what: string, stdin?: AsyncIterable<Buffer>): Promise<void> {
    const stderr: Buffer[] = [];
    const exit = await this.connection.run(command, {
      onOutput: (output) => {
        if (output.stream === 'stderr') stderr.push(output.data);
      },
      ...(stdin ? { stdin } : {}),
      ...(this.signal ? { signal: this.signal } : {}),
    });
    if (exit.kind !== 'exited' || exit.exitCode !== 0) {
      const reason = exit.kind === 'exited' ? `exit code ${exit.exitCode}` : `signal ${exit.signal}`;
      throw new FailedPreconditionError(`${what} failed in the guest (${reason}): ${Buffer.concat(stderr).toString('utf8').trim().slice(-2000)}`);
    }
  }

  private async isDirectoryViaShell(path: string): Promise<boolean> {
    const exit = await this.connection.run(`test -d ${shellQuote(path)}`, { onOutput: () => {} });
    return exit.kind === 'exited' && exit.exitCode === 0;
  }
}
