import type { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { HEADROOM, hasHeadroom } from '../fs/headroom.ts';

// ReadBlob carries every byte the fetcher serves, so its response is encoded
// by hand: at most one copy of the data (none when it was read with headroom,
// see ../fs/headroom.ts), where the generated encoder makes two. Same wire format.
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
      parts.push(take === chunk.length ? chunk : chunk.subarray(0, take));
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

/** Fields 2 and 3 (offset, total_size), then field 1's tag and length: everything before the data. */
function header(offset: number, total: number, dataLength: number): Buffer {
  const out = Buffer.allocUnsafe(3 + varintLength(offset) + varintLength(total) + varintLength(dataLength));
  let at = 0;
  if (offset !== 0) {
    out[at++] = 0x10;
    at = writeVarint(out, at, offset);
  }
  if (total !== 0) {
    out[at++] = 0x18;
    at = writeVarint(out, at, total);
  }
  if (dataLength > 0) {
    out[at++] = 0x0a;
    at = writeVarint(out, at, dataLength);
  }
  return out.subarray(0, at);
}

// Field order on the wire is free in protobuf: offset and total_size go first so
// that the header can sit directly in front of the data.
export function encodeReadBlobResponse(m: ReadBlobMessage): Buffer {
  const parts = m.parts ?? (m.data.length > 0 ? [m.data] : []);
  let dataLength = 0;
  for (const p of parts) dataLength += p.length;
  const head = header(Number(m.offset), Number(m.totalSize), dataLength);
  const digest = m.digest === '' ? undefined : Buffer.from(m.digest, 'utf8');
  const tail = digest ? Buffer.concat([Buffer.from([0x22]), varint(digest.length), digest]) : undefined;
  const only = parts.length === 1 ? parts[0]! : undefined;
  if (only && !tail && head.length <= HEADROOM && hasHeadroom(only)) {
    // Zero copy: the header goes into the spare bytes in front of the data.
    const start = only.byteOffset - head.length;
    head.copy(Buffer.from(only.buffer, start, head.length));
    return Buffer.from(only.buffer, start, head.length + only.length);
  }
  const out = Buffer.allocUnsafe(head.length + dataLength + (tail?.length ?? 0));
  let at = head.copy(out, 0);
  for (const p of parts) at += p.copy(out, at);
  if (tail) tail.copy(out, at);
  return out;
}

function varint(n: number): Buffer {
  const out = Buffer.allocUnsafe(varintLength(n));
  writeVarint(out, 0, n);
  return out;
}
