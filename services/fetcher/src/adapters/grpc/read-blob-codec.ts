import type { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';

// ReadBlob carries every byte the fetcher serves, so its response is encoded
// by hand: one allocation and one copy of the data, where the generated
// encoder makes two (writer chunks, then Buffer.from). Same wire format.
// Small chunks (a download arrives in ~64 KiB pieces) are gathered into
// messages of about 1 MiB during that same copy: per-message cost dominates
// otherwise.

/** A ReadBlob response whose data may be given as several parts, laid end to end when encoded. */
export interface ReadBlobMessage extends ReadBlobResponse {
  parts?: Buffer[];
}

export const MESSAGE_BYTES = 1024 * 1024;

/** Groups a byte stream into message-sized lists of parts, without copying. */
export async function* messageParts(
  chunks: AsyncIterable<Buffer>,
  target = MESSAGE_BYTES,
): AsyncGenerator<Buffer[]> {
  let parts: Buffer[] = [];
  let bytes = 0;
  for await (let chunk of chunks) {
    while (bytes + chunk.length >= target) {
      const take = target - bytes;
      parts.push(chunk.subarray(0, take));
      yield parts;
      parts = [];
      bytes = 0;
      chunk = chunk.subarray(take);
    }
    if (chunk.length > 0) {
      parts.push(chunk);
      bytes += chunk.length;
    }
  }
  if (bytes > 0) yield parts;
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

export function encodeReadBlobResponse(m: ReadBlobMessage): Buffer {
  const parts = m.parts ?? (m.data.length > 0 ? [m.data] : []);
  let dataLength = 0;
  for (const p of parts) dataLength += p.length;
  const offset = Number(m.offset);
  const total = Number(m.totalSize);
  const digest = m.digest === '' ? undefined : Buffer.from(m.digest, 'utf8');
  let size = 0;
  if (dataLength > 0) size += 1 + varintLength(dataLength) + dataLength;
  if (offset !== 0) size += 1 + varintLength(offset);
  if (total !== 0) size += 1 + varintLength(total);
  if (digest) size += 1 + varintLength(digest.length) + digest.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (dataLength > 0) {
    out[at++] = 0x0a;
    at = writeVarint(out, at, dataLength);
    for (const p of parts) at += p.copy(out, at);
  }
  if (offset !== 0) {
    out[at++] = 0x10;
    at = writeVarint(out, at, offset);
  }
  if (total !== 0) {
    out[at++] = 0x18;
    at = writeVarint(out, at, total);
  }
  if (digest) {
    out[at++] = 0x22;
    at = writeVarint(out, at, digest.length);
    digest.copy(out, at);
  }
  return out;
}
