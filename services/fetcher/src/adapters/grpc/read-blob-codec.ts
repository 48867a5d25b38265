import type { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { HEADROOM, hasHeadroom } from '../fs/headroom.ts';

// ReadBlob carries every byte the fetcher serves, so its response is encoded
// by hand. grpc-js copies whatever the serializer returns into its own framed
// buffer right away (synchronously, before any other message is serialized),
// so the serializer hands back either a view of the data with the header
// written into its headroom (see ../fs/headroom.ts) or a view of one reused
// scratch buffer: no allocation of its own per message. Same wire format.
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

let scratch = Buffer.allocUnsafeSlow(0);

/**
 * Encodes for grpc-js's responseSerialize only. grpc-js reads what a serializer
 * returns exactly once, synchronously, with `copy(output, 5)` into the framed
 * buffer it sends (server-interceptors.js serializeMessage; a test checks that
 * it still does). So a message of several parts is not gathered here at all:
 * the result is a view of a scratch buffer of the right length whose own `copy`
 * writes the header and the parts straight into grpc-js's buffer, one copy of
 * the data instead of two. Its bytes are only the message's once copied (any
 * other read of the view sees the scratch buffer's old contents), and copying
 * any other range first gathers it for real.
 */
export function serializeReadBlobResponse(m: ReadBlobMessage): Buffer {
  const scratchOf = (length: number) => {
    if (scratch.length < length) scratch = Buffer.allocUnsafeSlow(Math.max(length, 2 * MESSAGE_BYTES));
    return scratch.subarray(0, length);
  };
  const parts = m.parts;
  if (!parts || parts.length < 2) return encodeInto(m, scratchOf);
  let length = 0;
  const layout = layoutOf(m, parts);
  for (const piece of layout) length += piece.length;
  const view = scratchOf(length);
  let gathered = false;
  const gatherInto = (target: Uint8Array, at: number): number => {
    for (const piece of layout) {
      target.set(piece, at);
      at += piece.length;
    }
    return length;
  };
  view.copy = function copy(target: Uint8Array, targetStart = 0, sourceStart = 0, sourceEnd = length): number {
    if (!gathered && sourceStart === 0 && sourceEnd >= length && target.length - targetStart >= length) {
      return gatherInto(target, targetStart);
    }
    if (!gathered) {
      gatherInto(view, 0);
      gathered = true;
    }
    return Buffer.prototype.copy.call(view, target, targetStart, sourceStart, sourceEnd);
  };
  return view;
}

/** The pieces of an encoded message in order: header, data parts, digest field. */
function layoutOf(m: ReadBlobMessage, parts: Buffer[]): Uint8Array[] {
  let dataLength = 0;
  for (const p of parts) dataLength += p.length;
  const layout: Uint8Array[] = [header(Number(m.offset), Number(m.totalSize), dataLength), ...parts];
  const tail = trailer(m);
  if (tail) layout.push(tail);
  return layout;
}

/** Encodes into a buffer of its own (or in place, in the data's headroom). */
export function encodeReadBlobResponse(m: ReadBlobMessage): Buffer {
  return encodeInto(m, (length) => Buffer.allocUnsafe(length));
}

// Field order on the wire is free in protobuf: offset and total_size go first so
// that the header can sit directly in front of the data.
function encodeInto(m: ReadBlobMessage, allocate: (length: number) => Buffer): Buffer {
  const parts = m.parts ?? (m.data.length > 0 ? [m.data] : []);
  let dataLength = 0;
  for (const p of parts) dataLength += p.length;
  const head = header(Number(m.offset), Number(m.totalSize), dataLength);
  const tail = trailer(m);
  const only = parts.length === 1 ? parts[0]! : undefined;
  if (only && !tail && head.length <= HEADROOM && hasHeadroom(only)) {
    // Zero copy: the header goes into the spare bytes in front of the data.
    const start = only.byteOffset - head.length;
    head.copy(Buffer.from(only.buffer, start, head.length));
    return Buffer.from(only.buffer, start, head.length + only.length);
  }
  const out = allocate(head.length + dataLength + (tail?.length ?? 0));
  let at = head.copy(out, 0);
  for (const p of parts) at += p.copy(out, at);
  if (tail) tail.copy(out, at);
  return out;
}

/** Fields 4 and 5 (digest, linked), after the data; undefined when both are at their defaults. */
function trailer(m: ReadBlobMessage): Buffer | undefined {
  const pieces: Buffer[] = [];
  if (m.digest !== '') {
    const digest = Buffer.from(m.digest, 'utf8');
    pieces.push(Buffer.from([0x22]), varint(digest.length), digest);
  }
  if (m.linked) pieces.push(Buffer.from([0x28, 0x01]));
  return pieces.length > 0 ? Buffer.concat(pieces) : undefined;
}

function varint(n: number): Buffer {
  const out = Buffer.allocUnsafe(varintLength(n));
  writeVarint(out, 0, n);
  return out;
}

/**
 * Decodes a ReadBlobResponse keeping `data` as a view of grpc-js's message
 * buffer: the generated decoder copies it (Buffer.from), a second 1 MiB
 * allocation and copy per message on the client. Unknown fields are skipped.
 */
export function decodeReadBlobResponse(buffer: Buffer): ReadBlobResponse {
  const message: ReadBlobResponse = { data: EMPTY, offset: '0', totalSize: '0', digest: '', linked: false };
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      const byte = buffer[at++];
      if (byte === undefined) throw new Error('ReadBlobResponse is truncated (inside a varint)');
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
  };
  while (at < buffer.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType === 0) {
      const value = varint();
      if (field === 2) message.offset = String(value);
      else if (field === 3) message.totalSize = String(value);
      else if (field === 5) message.linked = value !== 0;
    } else if (wireType === 2) {
      const length = varint();
      if (at + length > buffer.length) throw new Error('ReadBlobResponse is truncated (inside a field)');
      if (field === 1) message.data = buffer.subarray(at, at + length);
      else if (field === 4) message.digest = buffer.toString('utf8', at, at + length);
      at += length;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else throw new Error(`ReadBlobResponse has unsupported wire type ${wireType} (field ${field})`);
  }
  return message;
}

const EMPTY = Buffer.alloc(0);
