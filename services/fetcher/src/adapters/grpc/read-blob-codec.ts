import type { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';

// ReadBlob carries every byte the fetcher serves, so its response is encoded
// by hand: one allocation and one copy of the data, where the generated
// encoder makes two (writer chunks, then Buffer.from). Same wire format.

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

export function encodeReadBlobResponse(m: ReadBlobResponse): Buffer {
  const offset = Number(m.offset);
  const total = Number(m.totalSize);
  const digest = m.digest === '' ? undefined : Buffer.from(m.digest, 'utf8');
  let size = 0;
  if (m.data.length > 0) size += 1 + varintLength(m.data.length) + m.data.length;
  if (offset !== 0) size += 1 + varintLength(offset);
  if (total !== 0) size += 1 + varintLength(total);
  if (digest) size += 1 + varintLength(digest.length) + digest.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (m.data.length > 0) {
    out[at++] = 0x0a;
    at = writeVarint(out, at, m.data.length);
    at += (m.data as Buffer).copy(out, at);
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
