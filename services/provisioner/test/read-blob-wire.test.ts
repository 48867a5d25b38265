import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { decodeReadBlobResponse } from '../src/adapters/grpc/read-blob-wire.ts';

test('the zero-copy ReadBlobResponse decoder agrees with the generated one', () => {
  const samples: ReadBlobResponse[] = [
    { data: randomBytes(1 << 20), offset: '0', totalSize: String(5 * 2 ** 40), digest: '' },
    { data: Buffer.alloc(0), offset: '1048576', totalSize: '1048576', digest: `sha256:${'ab'.repeat(32)}` },
    { data: Buffer.from('x'), offset: String(2 ** 53 + 2), totalSize: '0', digest: '' },
  ];
  for (const sample of samples) {
    const wire = Buffer.from(ReadBlobResponse.encode(sample).finish());
    const decoded = decodeReadBlobResponse(wire);
    assert.deepEqual({ ...decoded, data: Buffer.from(decoded.data) }, ReadBlobResponse.decode(wire));
    if (sample.data.length) assert.equal(decoded.data.buffer, wire.buffer, 'data is a view, not a copy');
  }
});
