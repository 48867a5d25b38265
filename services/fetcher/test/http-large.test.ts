import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import {
  FetcherServiceClient,
  type ListFilesResponse,
  type ReadBlobResponse,
  type ResolveContextResponse,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { forkFetcher } from './fixtures/fetcher-child.ts';
import { generatedPayload, startHttpServer, tempDir } from './support.ts';

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;

test('a 1 GiB file streams through the fetcher with bounded memory, digest verified', async (t) => {
  const payload = generatedPayload(SIZE / MiB);
  const expectedDigest = payload.digest;

  const http = await startHttpServer(t, (req, res) => {
    if (req.url === '/ctx/Dockerfile') return res.end('FROM scratch\nADD ./big.bin /\n');
    if (req.url !== '/ctx/big.bin') return res.writeHead(404).end();
    payload.send(res);
  });
  const cacheDir = await tempDir(t, 'kindling-fetcher-big-');
  const fetcher = await forkFetcher(['--port=0', `--cache-dir=${cacheDir}`]);
  t.after(() => fetcher.stop());
  const client = new FetcherServiceClient(`127.0.0.1:${fetcher.port}`, credentials.createInsecure());
  t.after(() => client.close());
  const unary = <Res>(
    method: (r: never, cb: (e: ServiceError | null, r: Res) => void) => unknown,
    req: object,
  ) =>
    new Promise<Res>((resolve, reject) =>
      method.call(client, req as never, (e, r) => (e ? reject(e) : resolve(r))),
    );

  const ctx = await unary<ResolveContextResponse>(client.resolveContext, {
    source: { $case: 'http', value: { dockerfileUrl: `${http.url}/ctx/Dockerfile` } },
    dockerfilePath: '',
  });
  await fetcher.ask('mark');
  const listed = await unary<ListFilesResponse>(client.listFiles, {
    contextId: ctx.contextId,
    patterns: ['big.bin'],
    excludes: [],
  });
  const file = listed.sources[0]!.files[0]!;
  assert.equal(file.digest, expectedDigest);
  assert.equal(file.size, String(SIZE));

  const received = createHash('sha256');
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const stream = client.readBlob({ digest: file.digest, offset: '0', contextId: '', path: '', copyTo: '', link: false });
    stream.on('data', (m: ReadBlobResponse) => {
      received.update(m.data);
      bytes += m.data.length;
    });
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  assert.equal(bytes, SIZE);
  assert.equal(`sha256:${received.digest('hex')}`, expectedDigest);

  const { baselineRss, peakRss } = await fetcher.ask<{ baselineRss: number; peakRss: number }>('report');
  const growth = peakRss - baselineRss;
  t.diagnostic(
    `fetcher RSS grew by ${(growth / MiB).toFixed(1)} MiB while moving 1 GiB (baseline ${(baselineRss / MiB).toFixed(0)} MiB)`,
  );
  // Generous: a buffering implementation would grow by over 1 GiB.
  assert.ok(growth < 200 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
});
