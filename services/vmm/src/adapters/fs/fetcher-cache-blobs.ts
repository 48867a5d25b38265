/**
 * Blobs of a fetcher on this host, read from its cache (<cache-dir>/sha256/<hex>, which the fetcher
 * renames into place only once the digest is known): a transfer-disk write then costs a file read
 * instead of two gRPC hops. The caller still hashes what it reads.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';

const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/u;

export function fetcherCacheBlobs(cacheDir: string): (digest: string) => Promise<AsyncIterable<Uint8Array> | undefined> {
  return async (digest) => {
    const hex = SHA256_DIGEST.exec(digest)?.[1];
    if (!hex) return undefined;
    // opened now: an eviction (unlink) while it is read leaves this descriptor whole
    const handle = await open(join(cacheDir, 'sha256', hex), 'r').catch(() => undefined);
    return handle?.createReadStream({ highWaterMark: 4 * 1024 * 1024 });
  };
}
