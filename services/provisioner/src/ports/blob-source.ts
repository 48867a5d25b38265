/** Content-addressed file bytes, pulled by sha256 digest (the fetcher's blob store). */
export interface BlobSource {
  /** Streams the blob; throws NotFoundError for an unknown digest. */
  read(digest: string, signal?: AbortSignal): AsyncIterable<Buffer>;
}
