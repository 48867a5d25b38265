import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import {
  decodeReadBlobResponse,
  encodeReadBlobResponse,
  serializeReadBlobResponse,
} from '../src/adapters/grpc/read-blob-codec.ts';
import { allocWithHeadroom } from '../src/adapters/fs/headroom.ts';

const samples: ReadBlobResponse[] = [
  { data: Buffer.from('hello'), offset: '0', totalSize: '5', digest: '' },
  { data: Buffer.alloc(300_000, 7), offset: String(2 ** 40 + 3), totalSize: String(2 ** 41), digest: '' },
  { data: Buffer.alloc(0), offset: '1048576', totalSize: '1048576', digest: `sha256:${'ab'.repeat(32)}` },
];

test('the hand-written ReadBlob codec reads and writes what the generated one does', () => {
  for (const m of samples) {
    assert.deepEqual(decodeReadBlobResponse(Buffer.from(ReadBlobResponse.encode(m).finish())), m);
    assert.deepEqual(ReadBlobResponse.decode(encodeReadBlobResponse(m)), m);
    assert.deepEqual(ReadBlobResponse.decode(serializeReadBlobResponse(m)), m);
  }
  const parts = [Buffer.from('ab'), Buffer.from('cde')];
  const gathered = ReadBlobResponse.decode(
    serializeReadBlobResponse({ data: Buffer.alloc(0), parts, offset: '9', totalSize: '0', digest: '' } as never),
  );
  assert.equal(Buffer.from(gathered.data).toString(), 'abcde');
  const withHeadroom = allocWithHeadroom(4);
  withHeadroom.write('wxyz');
  assert.deepEqual(
    decodeReadBlobResponse(encodeReadBlobResponse({ data: withHeadroom, offset: '4', totalSize: '8', digest: '' })),
    { data: Buffer.from('wxyz'), offset: '4', totalSize: '8', digest: '' },
  );
});

test('the ReadBlob decoder keeps the data as a view and skips fields it does not know', () => {
  const known = Buffer.from(ReadBlobResponse.encode(samples[0]!).finish());
  // field 9 varint, field 10 fixed64, field 11 bytes, field 12 fixed32: what a newer fetcher might add
  const unknown = Buffer.from([0x48, 0x96, 0x01, 0x51, ...Array(8).fill(1), 0x5a, 2, 9, 9, 0x65, 1, 2, 3, 4]);
  const wire = Buffer.concat([unknown, known]);
  const decoded = decodeReadBlobResponse(wire);
  assert.deepEqual(decoded, samples[0]);
  assert.equal(decoded.data.buffer, wire.buffer, 'data is a view of the received buffer, not a copy');
  assert.throws(() => decodeReadBlobResponse(wire.subarray(0, unknown.length + 4)), /truncated/u);
});
