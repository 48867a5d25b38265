import { createHash, randomBytes } from 'node:crypto';
import {
  close as closeCallback,
  open as openCallback,
  rename as renameCallback,
  writeFile as writeFileCallback,
  constants as fsConstants,
  writev,
} from 'node:fs';
import { promisify } from 'node:util';
import { chmod, copyFile, link, mkdir, open, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { allocWithHeadroom, keepsHeadroom } from './headroom.ts';
import { FileSha256, type RunningFileSha256 } from './file-sha256.ts';
import { join } from 'node:path';
import type { Digest } from '../../domain/digest.ts';
import { digestHex } from '../../domain/digest.ts';
import {
  AlreadyExistsError,
  CancelledError,
  DomainError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
} from '../../domain/errors.ts';
import type { BlobInfo, BlobReader, BlobStore, IngestOptions } from '../../ports/blob-store.ts';

export interface FsBlobStoreOptions {
  /** Directory holding sha256/<hex> blobs and tmp/ for in-progress writes. */
  dir: string;
  /** Total bytes kept; least recently used blobs go first. */
  limitBytes: number;
}

// Callback-based fs for the many-small-blobs path: cheaper than FileHandle-based fs/promises.
const writeFileFast = promisify(
  (path: string, data: Buffer, cb: (err: NodeJS.ErrnoException | null) => void) =>
    writeFileCallback(path, data, { flag: 'wx' }, cb),
);
const renameFast = promisify(renameCallback);
// Read and write: the sha256 worker reads the file back through the same descriptor.
const openExclusive = promisify((path: string, cb: (err: NodeJS.ErrnoException | null, fd: number) => void) =>
  openCallback(path, 'wx+', cb),
);
const closeFd = promisify(closeCallback);
const WRITE_BATCH_BYTES = 1024 * 1024;

/** writev until every byte is on disk (a regular file may take a batch in more than one call). */
async function writeAll(fd: number, parts: Uint8Array[], position: number): Promise<void> {
  let rest = [...parts];
  while (rest.length > 0) {
    const n = await new Promise<number>((resolve, reject) =>
      writev(fd, rest, position, (err, written) => (err ? reject(err) : resolve(written))),
    );
    if (n === 0) throw new InternalError(`writing ${position}: the disk took no bytes`);
    position += n;
    let skip = n;
    while (rest.length > 0 && skip >= rest[0]!.byteLength) skip -= rest.shift()!.byteLength;
    if (skip > 0) rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
  }
}

/** Blobs on local disk under their sha256, with an LRU size limit. */
export class FsBlobStore implements BlobStore {
  // Map iteration order is insertion order: re-inserting on use keeps it LRU.
  private readonly lru = new Map<string, number>();
  private readonly readers = new Map<string, number>();
  private bytes = 0;

  private readonly sha256 = new FileSha256();

  private constructor(private readonly options: FsBlobStoreOptions) {}

  static async open(options: FsBlobStoreOptions): Promise<FsBlobStore> {
    const store = new FsBlobStore(options);
    await mkdir(join(options.dir, 'sha256'), { recursive: true });
    // Whatever a crash left in tmp/ was never a blob.
    await rm(join(options.dir, 'tmp'), { recursive: true, force: true });
    await mkdir(join(options.dir, 'tmp'), { recursive: true });
    const found: { hex: string; size: number; atimeMs: number }[] = [];
    for (const hex of await readdir(join(options.dir, 'sha256'))) {
      if (!/^[0-9a-f]{64}$/u.test(hex)) continue;
      const st = await stat(join(options.dir, 'sha256', hex));
      found.push({ hex, size: st.size, atimeMs: Math.max(st.atimeMs, st.mtimeMs) });
    }
    found.sort((a, b) => a.atimeMs - b.atimeMs);
    for (const f of found) store.remember(f.hex, f.size);
    await store.evict();
    return store;
  }

  usage() {
    return { bytes: this.bytes, blobs: this.lru.size, limit: this.options.limitBytes };
  }

  private pathOf(hex: string): string {
    return join(this.options.dir, 'sha256', hex);
  }

  private remember(hex: string, size: number): void {
    const old = this.lru.get(hex);
    if (old !== undefined) {
      this.lru.delete(hex);
      this.bytes -= old;
    }
    this.lru.set(hex, size);
    this.bytes += size;
  }

  async put(data: Buffer, options: Omit<IngestOptions, 'onProgress' | 'signal'>): Promise<BlobInfo> {
    if (data.length > Math.min(options.maxSize, this.options.limitBytes)) {
      return this.ingest(
        (async function* () {
          yield data;
        })(),
        options,
      );
    }
    const hex = createHash('sha256').update(data).digest('hex');
    const digest = `sha256:${hex}` as Digest;
    if (options.expectedDigest && options.expectedDigest !== digest) {
      throw new InvalidArgumentError(
        `${options.label} has digest ${digest}, not the expected ${options.expectedDigest}`,
      );
    }
    if (!this.lru.has(hex)) {
      const tmp = join(this.options.dir, 'tmp', randomBytes(12).toString('hex'));
      try {
        await writeFileFast(tmp, data);
        await renameFast(tmp, this.pathOf(hex));
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    }
    this.remember(hex, data.length);
    await this.evict(hex);
    return { digest, size: data.length };
  }

  async ingest(source: AsyncIterable<Uint8Array>, options: IngestOptions): Promise<BlobInfo> {
    const limit = Math.min(options.maxSize, this.options.limitBytes);
    const tmp = join(this.options.dir, 'tmp', `${randomBytes(12).toString('hex')}`);
    const { onProgress } = options;
    let size = 0;
    let fd: number | undefined;
    // A blob that fits in one batch is hashed here from memory; a larger one by the
    // worker, from the file, as its batches land (see file-sha256.ts).
    let sha: RunningFileSha256 | undefined;
    // Chunks arrive in ~64 KiB pieces; written one by one, Node's per-write cost
    // (thread-pool hop, callback) matches the copy into the page cache. They go
    // out as ~1 MiB writev calls instead, one in flight while the next gathers.
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    let writing: Promise<void> | undefined;
    const writeBatch = async (parts: Uint8Array[], position: number) => {
      await writeAll(fd!, parts, position);
      sha?.extend(parts.reduce((end, chunk) => end + chunk.byteLength, position));
      let written = position;
      for (const chunk of parts) {
        written += chunk.byteLength;
        onProgress?.({ tmpPath: tmp, written, chunk });
      }
    };
    const startWrite = async () => {
      await writing;
      const parts = batch;
      writing = writeBatch(parts, size - batchBytes);
      writing.catch(() => {}); // awaited before the next batch or at the end
      batch = [];
      batchBytes = 0;
    };
    try {
      fd = await openExclusive(tmp);
      onProgress?.({ tmpPath: tmp, written: 0 });
      for await (const chunk of source) {
        if (options.signal?.aborted) throw new CancelledError(`fetch of ${options.label} was cancelled`);
        size += chunk.byteLength;
        if (size > limit) {
          throw new ResourceExhaustedError(
            size > this.options.limitBytes && options.maxSize > this.options.limitBytes
              ? `${options.label} is larger than the whole blob cache (${this.options.limitBytes} bytes); raise the cache size limit`
              : `${options.label} is larger than the file size limit of ${options.maxSize} bytes; raise the limit or shrink the file`,
          );
        }
        batch.push(chunk);
        batchBytes += chunk.byteLength;
        if (batchBytes >= WRITE_BATCH_BYTES) {
          sha ??= this.sha256.start(fd);
          await startWrite();
        }
      }
      if (options.expectedSize !== undefined && size !== options.expectedSize) {
        throw new InvalidArgumentError(
          `${options.label} ended after ${size} of the ${options.expectedSize} bytes announced; nothing was kept`,
        );
      }
      const inMemory = sha ? undefined : createHash('sha256');
      for (const chunk of inMemory ? batch : []) inMemory!.update(chunk);
      if (batchBytes > 0) await startWrite();
      await writing;
      let hex: string;
      if (sha) {
        const hashed = await sha.digest();
        sha = undefined;
        if (hashed.bytes !== size)
          throw new InternalError(`${options.label}: hashed ${hashed.bytes} bytes of the ${size} written`);
        hex = hashed.hex;
      } else hex = inMemory!.digest('hex');
      await closeFd(fd);
      fd = undefined;
      const digest = `sha256:${hex}` as Digest;
      // A gRPC client stream that is cancelled first looks ended (grpc-js half-closes, then reports the
      // cancel): checked as late as possible, so a cut-off upload is not stored as if complete.
      if (options.signal?.aborted) throw new CancelledError(`fetch of ${options.label} was cancelled`);
      if (options.expectedDigest && options.expectedDigest !== digest) {
        throw new InvalidArgumentError(
          `${options.label} has digest ${digest}, not the expected ${options.expectedDigest}`,
        );
      }
      if (this.lru.has(hex)) {
        // Already stored (the same bytes fetched again, or from another URL): keep that copy.
        // Renaming over it makes ext4 flush the new file first (auto_da_alloc): ~0.5 s per GiB
        // during which the download, and every reader following it, waits; unlinking takes ~30 ms.
        this.remember(hex, size);
        await rm(tmp, { force: true });
      } else {
        await rename(tmp, this.pathOf(hex));
        this.remember(hex, size);
      }
      await this.evict(hex);
      return { digest, size };
    } catch (err) {
      await writing?.catch(() => {});
      await sha?.discard();
      if (fd !== undefined) await closeFd(fd).catch(() => {});
      await rm(tmp, { force: true });
      if (err instanceof DomainError) throw err;
      if (options.signal?.aborted)
        throw new CancelledError(`fetch of ${options.label} was cancelled`, { cause: err });
      throw err;
    }
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const size = this.lru.get(digestHex(digest));
    return size === undefined ? undefined : { digest, size };
  }

  async read(
    digest: Digest,
    options: { offset?: number; chunkSize?: number; signal?: AbortSignal },
  ): Promise<BlobReader> {
    const hex = digestHex(digest);
    const size = this.lru.get(hex);
    if (size === undefined) {
      throw new NotFoundError(
        `blob ${digest} is not in the fetcher's cache (never fetched, or evicted); resolve its context again and list the files (that stores them anew)`,
      );
    }
    const total: number = size;
    const offset = options.offset ?? 0;
    if (offset > size)
      throw new InvalidArgumentError(`offset ${offset} is past the end of blob ${digest} (${size} bytes)`);
    this.remember(hex, size);
    const readers = this.readers;
    const path = this.pathOf(hex);
    void utimes(path, new Date(), new Date()).catch(() => {});
    const release = () => {
      const n = (readers.get(hex) ?? 1) - 1;
      if (n <= 0) readers.delete(hex);
      else readers.set(hex, n);
    };
    const chunkSize = options.chunkSize ?? 1024 * 1024;
    // Counted as a reader only once iteration starts, so an unread reader never pins a blob.
    async function* chunks(): AsyncGenerator<Buffer> {
      readers.set(hex, (readers.get(hex) ?? 0) + 1);
      try {
        if (offset === total) return;
        try {
          const handle = await open(path, 'r');
          try {
            // Read into buffers with headroom, so serving them needs no copy (see headroom.ts).
            for (let at = offset; at < total;) {
              options.signal?.throwIfAborted();
              const buffer = allocWithHeadroom(Math.min(chunkSize, total - at));
              const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
              if (bytesRead === 0) throw new InternalError(`blob ${digest} is shorter on disk than recorded`);
              at += bytesRead;
              yield keepsHeadroom(buffer, buffer.subarray(0, bytesRead));
            }
          } finally {
            await handle.close();
          }
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            throw new NotFoundError(
              `blob ${digest} was evicted from the fetcher's cache; resolve its context again and list the files (that stores them anew)`,
            );
          }
          throw err;
        }
      } finally {
        release();
      }
    }
    return { size, chunks: chunks() };
  }

  async copyTo(digest: Digest, destination: string, options: { link?: boolean } = {}): Promise<BlobInfo & { linked: boolean }> {
    const hex = digestHex(digest);
    const size = this.lru.get(hex);
    if (size === undefined) {
      throw new NotFoundError(`blob ${digest} is not in the fetcher's cache (never fetched, or evicted); resolve its context again and list the files (that stores them anew)`);
    }
    this.remember(hex, size);
    this.readers.set(hex, (this.readers.get(hex) ?? 0) + 1); // not evicted while copied
    let linked = false;
    try {
      if (options.link) linked = await this.linkTo(hex, destination);
      // copy_file_range (or a reflink): the bytes never pass through this process
      if (!linked) await copyFile(this.pathOf(hex), destination, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new AlreadyExistsError(`copy_to ${destination} already exists: the hand-off makes a new file`);
      if (code === 'ENOENT') throw new NotFoundError(`copy_to ${destination}: its directory does not exist (or blob ${digest} was just evicted)`);
      throw err;
    } finally {
      const n = (this.readers.get(hex) ?? 1) - 1;
      if (n <= 0) this.readers.delete(hex);
      else this.readers.set(hex, n);
    }
    return { digest, size, linked };
  }

  /** A hard link to the stored file, read-only first (the consumer shares its inode); false across filesystems. */
  private async linkTo(hex: string, destination: string): Promise<boolean> {
    await chmod(this.pathOf(hex), 0o444);
    try {
      await link(this.pathOf(hex), destination);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') return false;
      throw err;
    }
  }

  /** Drops least recently used blobs until the store fits its limit; blobs being read stay. */
  private async evict(keep?: string): Promise<void> {
    for (const [hex, size] of this.lru) {
      if (this.bytes <= this.options.limitBytes) return;
      if (hex === keep || this.readers.has(hex)) continue;
      this.lru.delete(hex);
      this.bytes -= size;
      await unlink(this.pathOf(hex)).catch(() => {});
    }
  }
}
