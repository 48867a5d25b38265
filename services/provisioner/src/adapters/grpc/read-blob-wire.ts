// A zero-copy decoder for ReadBlobResponse. The generated decoder copies every chunk's bytes
// (Buffer.from(Uint8Array)); on the PutFiles hot path we keep a view into gRPC's message buffer.
import { FetcherServiceService, type ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export function decodeReadBlobResponse(buffer: Buffer): ReadBlobResponse {
  const message: ReadBlobResponse = { data: Buffer.alloc(0), offset: '0', totalSize: '0', digest: '' };
  let position = 0;
  const varint = (): bigint => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = buffer[position++];
      if (byte === undefined) throw new Error('truncated ReadBlobResponse');
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value;
    }
  };
  while (position < buffer.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (wireType === WIRE_LEN) {
      const length = Number(varint());
      const view = buffer.subarray(position, position + length);
      position += length;
      if (field === 1) message.data = view;
      else if (field === 4) message.digest = view.toString('utf8');
    } else if (wireType === WIRE_VARINT) {
      const value = varint();
      if (field === 2) message.offset = value.toString();
      else if (field === 3) message.totalSize = value.toString();
    } else if (wireType === WIRE_I64) position += 8;
    else if (wireType === WIRE_I32) position += 4;
    else throw new Error(`unsupported wire type ${wireType} in ReadBlobResponse`);
  }
  return message;
}

/** FetcherService's ReadBlob method definition with the zero-copy response decoder. */
export const zeroCopyReadBlobDefinition = {
  readBlob: { ...FetcherServiceService.readBlob, responseDeserialize: decodeReadBlobResponse },
};
