/**
 * Blobs of a fetcher on this host, read from its cache (<cache-dir>/sha256/<hex>, which the fetcher
 * renames into place only once the digest is known): a transfer-disk write then costs a file read
 * instead of two gRPC hops. The caller still hashes what it reads.
 */
import { open } from 'node:fs/promises';
import { fetcherCacheBlobPath } from '@kindling/runtime';

export function fetcherCacheBlobs(cacheDir: string): (digest: string) => Promise<AsyncIterable<Uint8Array> | undefined> {
  return async (digest) => {
    const path = fetcherCacheBlobPath(cacheDir, digest);
    // opened now: an eviction (unlink) while it is read leaves this descriptor whole
    const handle = path ? await open(path, 'r').catch(() => undefined) : undefined;
    return handle?.createReadStream({ highWaterMark: 4 * 1024 * 1024 });
  };
}
