import type { CompressionFormat } from '../domain/archive-format.ts';

/** Decompresses gzip, bzip2 or xz streams (ADD's local archive extraction). */
export interface ArchiveDecoder {
  decompress(format: Exclude<CompressionFormat, 'none'>, data: AsyncIterable<Buffer>): AsyncIterable<Buffer>;
}
