import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { credentials, status } from '@grpc/grpc-js';
import {
  FetcherServiceClient,
  type FetchUrlResponse,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { FsBlobStore } from '../src/adapters/fs/fs-blob-store.ts';
import { grpcCode, startHttpServer, startTestFetcher, tempDir } from './support.ts';

async function* bytesOf(...parts: (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(join(dir, 'sha256')))
    total += (await stat(join(dir, 'sha256', name))).size;
  return total;
}

test('the blob cache keeps to its size limit, evicting least recently used blobs', async (t) => {
  const dir = await tempDir(t);
  const store = await FsBlobStore.open({ dir, limitBytes: 1000 });
  const a = await store.ingest(bytesOf('a'.repeat(300)), { maxSize: 1e6, label: 'a' });
  const b = await store.ingest(bytesOf('b'.repeat(300)), { maxSize: 1e6, label: 'b' });
  const c = await store.ingest(bytesOf('c'.repeat(300)), { maxSize: 1e6, label: 'c' });
  // Reading a makes it the most recently used, so b goes first.
  for await (const _ of (await store.read(a.digest, {})).chunks);
  const d = await store.ingest(bytesOf('d'.repeat(300)), { maxSize: 1e6, label: 'd' });
  assert.equal(await store.stat(b.digest), undefined);
  for (const kept of [a, c, d]) assert.ok(await store.stat(kept.digest));
  assert.ok(store.usage().bytes <= 1000);
  assert.ok((await diskUsage(dir)) <= 1000);
  assert.equal(d.digest, `sha256:${createHash('sha256').update('d'.repeat(300)).digest('hex')}`);

  // A blob being read is not evicted under it.
  const reading = await store.read(c.digest, { chunkSize: 100 });
  const iterator = reading.chunks[Symbol.asyncIterator]();
  await iterator.next();
  await store.ingest(bytesOf('e'.repeat(300)), { maxSize: 1e6, label: 'e' });
  await store.ingest(bytesOf('f'.repeat(300)), { maxSize: 1e6, label: 'f' });
  assert.ok(await store.stat(c.digest));
  let rest = 100;
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest += r.value.length;
  assert.equal(rest, 300);

  // A restart finds the blobs and the limit again.
  const reopened = await FsBlobStore.open({ dir, limitBytes: 1000 });
  assert.ok(reopened.usage().bytes <= 1000);
  assert.equal(reopened.usage().blobs, store.usage().blobs);

  // A blob larger than the whole cache is refused, and nothing of it remains.
  await assert.rejects(
    store.ingest(bytesOf('g'.repeat(1200)), { maxSize: 1e6, label: 'big' }),
    /larger than the whole blob cache/,
  );
  assert.deepEqual(await readdir(join(dir, 'tmp')), []);
});

test('failed downloads leave nothing half-written in the cache', async (t) => {
  const http = await startHttpServer(t, (req, res) => {
    if (req.url === '/big') return res.end(Buffer.alloc(4096, 1));
    if (req.url === '/drops') {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(500, 2));
      return void setTimeout(() => res.destroy(), 20);
    }
    if (req.url === '/announces-too-much') {
      // Refused from the header alone: with no body coming, only that answers before the body timeout.
      return void res.writeHead(200, { 'content-length': '1000000' }).flushHeaders();
    }
    if (req.url === '/stalls') {
      res.writeHead(200, { 'content-length': '1000' });
      return void res.write(Buffer.alloc(100, 3)); // and nothing more
    }
    res.end('payload');
  });
  const fetcher = await startTestFetcher(t, ['--max-file-size=1024', '--body-timeout=300ms']);
  const fetchUrl = (url: string, expectedDigest = '') =>
    new Promise<FetchUrlResponse>((resolve, reject) =>
      fetcher.client.fetchUrl({ url, expectedDigest }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  await assert.rejects(fetchUrl(`${http.url}/big`), (err) => grpcCode(err) === status.RESOURCE_EXHAUSTED);
  await assert.rejects(fetchUrl(`${http.url}/announces-too-much`), (err) => {
    assert.equal(grpcCode(err), status.RESOURCE_EXHAUSTED);
    assert.match((err as Error).message, /announces-too-much is 1000000 bytes \(Content-Length\), over the file size limit of 1024/);
    return true;
  });
  await assert.rejects(fetchUrl(`${http.url}/drops`), (err) => grpcCode(err) === status.UNAVAILABLE);
  await assert.rejects(fetchUrl(`${http.url}/stalls`), (err) => {
    assert.equal(grpcCode(err), status.DEADLINE_EXCEEDED);
    assert.match((err as Error).message, /timed out: (no response headers within|the body paused for more than) [\d.]+ s/);
    return true;
  });
  await assert.rejects(fetchUrl(`${http.url}/ok`, `sha256:${'0'.repeat(64)}`), (err) => {
    assert.equal(grpcCode(err), status.INVALID_ARGUMENT);
    assert.match((err as Error).message, /not the expected/);
    return true;
  });
  assert.deepEqual(await readdir(join(fetcher.cacheDir, 'tmp')), []);
  assert.deepEqual(await readdir(join(fetcher.cacheDir, 'sha256')), []);
  const good = await fetchUrl(
    `${http.url}/ok`,
    `sha256:${createHash('sha256').update('payload').digest('hex')}`,
  );
  assert.equal(good.file!.mode, 0o644);
  assert.equal((await readdir(join(fetcher.cacheDir, 'sha256'))).length, 1);
});

test('ten concurrent clients asking for one URL cause one download', async (t) => {
  const body = Buffer.alloc(256 * 1024, 9);
  const http = await startHttpServer(t, (_req, res) => {
    // Slow enough that all ten requests arrive while the first is in flight.
    setTimeout(() => res.end(body), 300);
  });
  const fetcher = await startTestFetcher(t);
  const address = fetcher.client.getChannel().getTarget().replace(/^dns:/, '');
  const clients = Array.from(
    { length: 10 },
    () => new FetcherServiceClient(address, credentials.createInsecure()),
  );
  t.after(() => clients.forEach((c) => c.close()));
  const results = await Promise.all(
    clients.map(
      (c) =>
        new Promise<FetchUrlResponse>((resolve, reject) =>
          c.fetchUrl({ url: `${http.url}/shared.bin`, expectedDigest: '' }, (err, res) =>
            err ? reject(err) : resolve(res!),
          ),
        ),
    ),
  );
  assert.equal(http.hits.get('/shared.bin'), 1);
  assert.equal(new Set(results.map((r) => r.file!.digest)).size, 1);
  const read = await Promise.all(clients.map(() => fetcher.readBlob(results[0]!.file!.digest)));
  for (const r of read) assert.ok(r.equals(body));
  // Reads resume from an offset.
  assert.equal((await fetcher.readBlob(results[0]!.file!.digest, body.length - 10)).length, 10);
  await assert.rejects(
    fetcher.readBlob(`sha256:${'1'.repeat(64)}`),
    (err) => grpcCode(err) === status.NOT_FOUND,
  );
  await assert.rejects(fetcher.readBlob('md5:abc'), (err) => grpcCode(err) === status.INVALID_ARGUMENT);
});

test('a large blob ingested again keeps the stored copy; a failed large ingest leaves nothing', async (t) => {
  const dir = await tempDir(t);
  const store = await FsBlobStore.open({ dir, limitBytes: 64 * 1024 * 1024 });
  // Over one write batch (1 MiB), so the digest comes from the sha256 worker reading the file back.
  const parts = Array.from({ length: 40 }, (_, i) => Buffer.alloc(100_000, i));
  const expected = `sha256:${createHash('sha256').update(Buffer.concat(parts)).digest('hex')}`;
  const first = await store.ingest(bytesOf(...parts), { maxSize: 1e9, label: 'first' });
  const stored = await stat(join(dir, 'sha256', expected.slice(7)));
  const again = await store.ingest(bytesOf(...parts), { maxSize: 1e9, label: 'again' });
  assert.deepEqual(first, { digest: expected, size: 4_000_000 });
  assert.deepEqual(again, first);
  assert.equal((await stat(join(dir, 'sha256', expected.slice(7)))).ino, stored.ino, 'the stored file is kept');
  assert.equal(store.usage().bytes, 4_000_000);
  await assert.rejects(
    store.ingest(bytesOf(...parts), { maxSize: 1e9, label: 'checked', expectedDigest: `sha256:${'0'.repeat(64)}` }),
    /not the expected/u,
  );
  await assert.rejects(
    store.ingest(
      (async function* () {
        yield* bytesOf(...parts);
        throw new Error('connection reset');
      })(),
      { maxSize: 1e9, label: 'broken' },
    ),
    /connection reset/u,
  );
  assert.deepEqual(await readdir(join(dir, 'tmp')), []);
});
