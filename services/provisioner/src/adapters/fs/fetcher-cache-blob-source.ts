// BlobSource adapter for a fetcher on the same host: reads <fetcher cache-dir>/sha256/<hex>
// directly (the fetcher writes each blob under a temp name and renames it there once its digest
// is known), so the bytes skip a second process and gRPC framing. A blob that is not there
// (never fetched, evicted, unreadable) comes from the fallback, the fetcher's ReadBlob.
// Every byte is still hashed (the name is only as good as the disk): large blobs on the reader's
// worker thread, the rest inline; the caller compares the result with the digest.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { fetcherCacheBlobPath } from '@kindling/runtime';
import { InternalError } from '../../domain/errors.ts';
import type { BlobSource, SelfHashedBlob } from '../../ports/blob-source.ts';
import { HashingFileReader } from './hashing-file-reader.ts';

/** Below this, reading and hashing inline is cheaper than a worker round trip. */
const WORKER_MIN_SIZE = 1024 * 1024;

export class FetcherCacheBlobSource implements BlobSource {
  constructor(
    private readonly cacheDir: string,
    private readonly fallback: BlobSource,
    private readonly reader = new HashingFileReader(),
  ) {}

  read(digest: string, signal?: AbortSignal): SelfHashedBlob {
    let sha256: Promise<string> = Promise.reject(new InternalError(`the sha256 of blob ${digest} was asked for before it was read`));
    sha256.catch(() => {});
    const stream = this.chunks(digest, signal, (known) => (sha256 = known));
    return {
      [Symbol.asyncIterator]: () => stream,
      yieldedSha256: () => sha256,
    };
  }

  private async *chunks(digest: string, signal: AbortSignal | undefined, setSha256: (sha256: Promise<string>) => void): AsyncGenerator<Buffer> {
    const path = fetcherCacheBlobPath(this.cacheDir, digest);
    // open once: if the fetcher evicts (unlinks) the blob meanwhile, this descriptor still reads it whole
    const handle = path ? await open(path, 'r').catch(() => undefined) : undefined;
    const hash = createHash('sha256');
    if (!handle) {
      for await (const chunk of this.fallback.read(digest, signal)) {
        hash.update(chunk);
        yield chunk;
      }
      setSha256(Promise.resolve(hash.digest('hex')));
      return;
    }
    try {
      if ((await handle.stat()).size < WORKER_MIN_SIZE) {
        const data = await handle.readFile();
        setSha256(Promise.resolve(hash.update(data).digest('hex')));
        yield data;
        return;
      }
      const read = this.reader.read(handle, `blob ${digest} in the fetcher's cache (${path})`);
      setSha256(read.sha256);
      for await (const chunk of read.chunks) {
        signal?.throwIfAborted();
        yield chunk;
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new InternalError(`reading blob ${digest} from the fetcher's cache at ${path} failed: ${(error as Error).message}`, { cause: error });
    } finally {
      await handle.close().catch(() => {});
    }
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}
