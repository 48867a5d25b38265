// BlobSource adapter for a fetcher on the same host: reads <fetcher cache-dir>/sha256/<hex>
// directly (the fetcher writes each blob under a temp name and renames it there once its digest
// is known), so the bytes skip a second process and gRPC framing. A blob that is not there
// (never fetched, evicted, unreadable) comes from the fallback, the fetcher's ReadBlob.
// The caller still checks every byte against the digest: the name is only as good as the disk.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError } from '../../domain/errors.ts';
import type { BlobSource } from '../../ports/blob-source.ts';

const READ_CHUNK = 1024 * 1024;
const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/u;

export class FetcherCacheBlobSource implements BlobSource {
  constructor(
    private readonly cacheDir: string,
    private readonly fallback: BlobSource,
  ) {}

  async *read(digest: string, signal?: AbortSignal): AsyncIterable<Buffer> {
    const hex = SHA256_DIGEST.exec(digest)?.[1];
    const path = hex ? join(this.cacheDir, 'sha256', hex) : undefined;
    // open once: if the fetcher evicts (unlinks) the blob meanwhile, this descriptor still reads it whole
    const handle = path ? await open(path, 'r').catch(() => undefined) : undefined;
    if (!handle) {
      yield* this.fallback.read(digest, signal);
      return;
    }
    const stream = handle.createReadStream({ highWaterMark: READ_CHUNK, autoClose: true });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        yield chunk;
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new InternalError(`reading blob ${digest} from the fetcher's cache at ${path} failed: ${(error as Error).message}`, { cause: error });
    } finally {
      stream.destroy();
    }
  }
}
