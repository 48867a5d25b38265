import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import {
  decodeReadBlobResponse,
  encodeReadBlobResponse,
  serializeReadBlobResponse,
  type ReadBlobMessage,
} from '../src/adapters/grpc/read-blob-codec.ts';
import { allocWithHeadroom, keepsHeadroom, POOLED_SIZE, recycle } from '../src/adapters/fs/headroom.ts';
import { createFetcherClient } from '../src/client.ts';

// grpc-js's own server-side framing (the code every ReadBlob response goes through), with the
// fetcher's serializer: what a client receives, after the 5-byte gRPC message header.
const { BaseServerInterceptingCall } = createRequire(import.meta.url)('@grpc/grpc-js/build/src/server-interceptors.js') as {
  BaseServerInterceptingCall: { prototype: { serializeMessage(this: unknown, value: unknown): Buffer } };
};
function framedByGrpc(m: ReadBlobMessage): Buffer {
  const framed = BaseServerInterceptingCall.prototype.serializeMessage.call({ handler: { serialize: serializeReadBlobResponse } }, m);
  assert.equal(framed.readUInt32BE(1), framed.length - 5);
  return framed.subarray(5);
}

const samples: ReadBlobResponse[] = [
  { data: Buffer.from('hello'), offset: '0', totalSize: '5', digest: '', linked: false },
  { data: Buffer.alloc(300_000, 7), offset: String(2 ** 40 + 3), totalSize: String(2 ** 41), digest: '', linked: false },
  { data: Buffer.alloc(0), offset: '1048576', totalSize: '1048576', digest: `sha256:${'ab'.repeat(32)}`, linked: false },
  { data: Buffer.alloc(0), offset: '0', totalSize: '77', digest: `sha256:${'ef'.repeat(32)}`, linked: true },
];

test('the hand-written ReadBlob codec reads and writes what the generated one does', () => {
  for (const m of samples) {
    assert.deepEqual(decodeReadBlobResponse(Buffer.from(ReadBlobResponse.encode(m).finish())), m);
    assert.deepEqual(ReadBlobResponse.decode(encodeReadBlobResponse(m)), m);
    assert.deepEqual(ReadBlobResponse.decode(serializeReadBlobResponse(m)), m);
  }
  const parts = [Buffer.from('ab'), Buffer.from('cde')];
  const gathered = ReadBlobResponse.decode(
    framedByGrpc({ data: Buffer.alloc(0), parts, offset: '9', totalSize: '0', digest: '', linked: false } as never),
  );
  assert.equal(Buffer.from(gathered.data).toString(), 'abcde');
  const withHeadroom = allocWithHeadroom(4);
  withHeadroom.write('wxyz');
  assert.deepEqual(
    decodeReadBlobResponse(encodeReadBlobResponse({ data: withHeadroom, offset: '4', totalSize: '8', digest: '', linked: false })),
    { data: Buffer.from('wxyz'), offset: '4', totalSize: '8', digest: '', linked: false },
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

test('createFetcherClient reads at most two ReadBlob messages ahead of its reader', () => {
  const client = createFetcherClient('127.0.0.1:1');
  try {
    const call = client.readBlob({ digest: `sha256:${'00'.repeat(32)}`, offset: '0', contextId: '', path: '', copyTo: '', link: false });
    call.on('error', () => {});
    assert.equal(call.readableHighWaterMark, 2);
    call.cancel();
  } finally {
    client.close();
  }
});

test('a ReadBlob response of several parts, framed by grpc-js, is the generated encoding of the same message', () => {
  const parts = [Buffer.alloc(70_000, 1), Buffer.from('xyz'), Buffer.alloc(1 << 20, 2).subarray(5)];
  const data = Buffer.concat(parts);
  for (const digest of ['', `sha256:${'cd'.repeat(32)}`]) {
    const m = { data: Buffer.alloc(0), parts, offset: String(2 ** 33), totalSize: String(2 ** 34), digest, linked: false };
    // Scratch left holding other bytes: the result must not depend on it.
    serializeReadBlobResponse({ data: Buffer.alloc(3 << 20, 0xee), offset: '1', totalSize: '2', digest: '', linked: false });
    const framed = framedByGrpc(m);
    // Same fields, same size as the generated encoder's (which orders the fields differently).
    assert.equal(framed.length, ReadBlobResponse.encode({ data, offset: m.offset, totalSize: m.totalSize, digest, linked: false }).finish().length);
    assert.deepEqual(ReadBlobResponse.decode(framed), { data, offset: m.offset, totalSize: m.totalSize, digest, linked: false });
    assert.deepEqual(decodeReadBlobResponse(framed), { data, offset: m.offset, totalSize: m.totalSize, digest, linked: false });
    // Any other read of the result gathers it first.
    const view = serializeReadBlobResponse(m);
    const partial = Buffer.alloc(10);
    view.copy(partial, 0, 0, 10);
    assert.deepEqual(partial, framed.subarray(0, 10));
  }
});

test('read buffers handed back whole are reused once; parts of one, short reads and others are not', () => {
  const whole = allocWithHeadroom(POOLED_SIZE);
  recycle(whole);
  recycle(whole); // a second hand-back of the same buffer must not make it reusable twice
  assert.equal(allocWithHeadroom(POOLED_SIZE).buffer, whole.buffer);
  assert.notEqual(allocWithHeadroom(POOLED_SIZE).buffer, whole.buffer);
  const split = allocWithHeadroom(POOLED_SIZE);
  recycle(keepsHeadroom(split, split.subarray(0, 1000)));
  recycle(split.subarray(1000));
  recycle(Buffer.alloc(POOLED_SIZE));
  const next = allocWithHeadroom(POOLED_SIZE);
  assert.notEqual(next.buffer, split.buffer);
  assert.equal(next.length, POOLED_SIZE);
});
