/** Content-addressed file bytes, pulled by sha256 digest (the fetcher's blob store). */
export interface BlobSource {
  /** Streams the blob; throws NotFoundError for an unknown digest. */
  read(digest: string, signal?: AbortSignal): AsyncIterable<Buffer> | SelfHashedBlob;
}

/**
 * A blob stream whose adapter hashes exactly the bytes it yields where it reads them (e.g. on a
 * worker thread), so the caller need not hash them again; the caller still compares the digest.
 */
export interface SelfHashedBlob extends AsyncIterable<Buffer> {
  /** sha256 (hex) of every byte yielded; call once iteration has ended. */
  yieldedSha256(): Promise<string>;
}

export function isSelfHashed(blob: AsyncIterable<Buffer>): blob is SelfHashedBlob {
  return typeof (blob as Partial<SelfHashedBlob>).yieldedSha256 === 'function';
}
