/**
 * The fetcher's cache layout, which services on its host read directly (the provisioner's
 * PutFiles, the vmm's transfer-disk writes): each blob at <cache-dir>/sha256/<hex>, renamed there
 * only once its digest is known.
 */
import { join } from 'node:path';

const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/u;

/** Where a blob "sha256:<hex>" lives in the fetcher's cache; undefined for anything else. */
export function fetcherCacheBlobPath(cacheDir: string, digest: string): string | undefined {
  const hex = SHA256_DIGEST.exec(digest)?.[1];
  return hex ? join(cacheDir, 'sha256', hex) : undefined;
}
