import type { Digest } from '../domain/digest.ts';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface IngestOptions {
  /** Refuse (ResourceExhausted) once more than this many bytes arrive. */
  maxSize: number;
  /** When set, a stream ending at another size fails the ingest and nothing is kept (a cut-off upload). */
  expectedSize?: number | undefined;
  /** When set, a mismatch fails the ingest and nothing is kept (ADD --checksum). */
  expectedDigest?: Digest | undefined;
  signal?: AbortSignal | undefined;
  /** Names the source in errors; never holds credentials. */
  label: string;
  /**
   * Told where the bytes go and how many are on disk so far, so readers can
   * follow a blob while it is still arriving.
   */
  onProgress?: ((progress: { tmpPath: string; written: number; chunk?: Uint8Array }) => void) | undefined;
}

export interface BlobReader {
  size: number;
  chunks: AsyncIterable<Buffer>;
}

/**
 * Content-addressed blob storage: each blob is stored once by sha256, written
 * to a temporary name and renamed only after its digest is known, so nothing
 * half-written is ever visible.
 */
export interface BlobStore {
  ingest(source: AsyncIterable<Uint8Array>, options: IngestOptions): Promise<BlobInfo>;
  /** Stores a small blob already in memory; skips the write when it is already stored. */
  put(data: Buffer, options: Omit<IngestOptions, 'onProgress' | 'signal'>): Promise<BlobInfo>;
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Streams a blob from offset; NotFound when absent. The blob is not evicted while read. */
  read(
    digest: Digest,
    options: { offset?: number; chunkSize?: number; signal?: AbortSignal },
  ): Promise<BlobReader>;
  /**
   * Copies a whole blob to a new file at `destination` (kernel copy), or with `link` makes it a hard
   * link to the stored file, made read-only, where both lie on one filesystem; NotFound when absent.
   */
  copyTo(digest: Digest, destination: string, options?: { link?: boolean }): Promise<BlobInfo & { linked: boolean }>;
  /** Bytes held now, for metrics and tests. */
  usage(): { bytes: number; blobs: number; limit: number };
}
