import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import {
  FetcherServiceClient,
  type FetchUrlResponse,
  type ReadBlobResponse,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { forkFetcher } from './fixtures/fetcher-child.ts';
import { generatedPayload, startHttpServer, tempDir } from './support.ts';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;

test('ReadBlob to a reader that stops reading holds back: the fetcher does not buffer the blob', async (t) => {
  const payload = generatedPayload(SIZE / MiB);
  const digest = payload.digest;
  const http = await startHttpServer(t, (_req, res) => {
    payload.send(res);
  });
  const cacheDir = await tempDir(t, 'kindling-fetcher-backpressure-');
  const fetcher = await forkFetcher(['--port=0', `--cache-dir=${cacheDir}`]);
  t.after(() => fetcher.stop());
  const client = new FetcherServiceClient(`127.0.0.1:${fetcher.port}`, credentials.createInsecure());
  t.after(() => client.close());
  const fetched = await new Promise<FetchUrlResponse>((resolve, reject) =>
    client.fetchUrl({ url: `${http.url}/blob.bin`, expectedDigest: '' }, (e, r) => (e ? reject(e) : resolve(r))),
  );
  assert.equal(fetched.file!.digest, digest);

  await fetcher.ask('mark');
  const received = createHash('sha256');
  let bytes = 0;
  const stream = client.readBlob({ digest, offset: '0', contextId: '', path: '', copyTo: '', link: false });
  let paused = false;
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (m: ReadBlobResponse) => {
      received.update(m.data);
      bytes += m.data.length;
      if (!paused) {
        // The client stops reading for a while: everything the fetcher would send meanwhile must wait.
        paused = true;
        stream.pause();
        void sleep(1500).then(() => stream.resume());
      }
    });
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  assert.equal(bytes, SIZE);
  assert.equal(`sha256:${received.digest('hex')}`, digest);
  const { baselineRss, peakRss } = await fetcher.ask<{ baselineRss: number; peakRss: number }>('report');
  const growth = peakRss - baselineRss;
  t.diagnostic(`fetcher RSS grew by ${(growth / MiB).toFixed(1)} MiB serving ${SIZE / MiB} MiB to a paused reader`);
  // Generous: a fetcher reading ahead of the transport would hold most of the 256 MiB.
  assert.ok(growth < 96 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
});
