import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { grpcCode, startHttpServer, startTestFetcher, type TestFetcher } from './support.ts';

const MiB = 1024 * 1024;

/** Reads a context file by path; optionally pauses between messages to be a slow reader. */
async function readByPath(fetcher: TestFetcher, contextId: string, path: string, pauseMs = 0) {
  const parts: Buffer[] = [];
  let digest = '';
  let totalSize = '';
  const stream = fetcher.client.readBlob({ digest: '', offset: '0', contextId, path, copyTo: '', link: false });
  for await (const m of stream as AsyncIterable<ReadBlobResponse>) {
    parts.push(m.data);
    if (m.digest) digest = m.digest;
    totalSize = m.totalSize;
    if (pauseMs) await sleep(pauseMs);
  }
  return { data: Buffer.concat(parts), digest, totalSize };
}

test('ReadBlob by context and path streams an HTTP file while it downloads', async (t) => {
  const size = 40 * MiB;
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) body.writeUInt32LE(i, i);
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const http = await startHttpServer(t, (req, res) => {
    if (req.url === '/ctx/Dockerfile') return res.end('FROM scratch\nADD big.bin /\n');
    if (req.url !== '/ctx/big.bin' && req.url !== '/ctx/slow.bin') return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(size) });
    // Dribbled out, so readers really follow a download in progress.
    let at = 0;
    const next = () => {
      if (at >= size) return res.end();
      res.write(body.subarray(at, (at += 4 * MiB)));
      setTimeout(next, 5);
    };
    next();
  });
  const fetcher = await startTestFetcher(t);
  const ctx = await fetcher.resolve({
    source: { $case: 'http', value: { dockerfileUrl: `${http.url}/ctx/Dockerfile` } },
  });

  // Two readers and a ListFiles at once: one download, the same bytes and digest for all.
  const [a, b, listed] = await Promise.all([
    readByPath(fetcher, ctx.contextId, 'big.bin'),
    readByPath(fetcher, ctx.contextId, 'big.bin'),
    fetcher.listFiles(ctx.contextId, ['big.bin']),
  ]);
  assert.equal(http.hits.get('/ctx/big.bin'), 1);
  for (const r of [a, b]) {
    assert.equal(r.data.length, size);
    assert.ok(r.data.equals(body));
    assert.equal(r.digest, digest);
    assert.equal(r.totalSize, String(size));
  }
  assert.equal(listed.sources[0]!.files[0]!.digest, digest);

  // A reader far slower than the download falls back from memory to the file, and still gets every byte.
  const slow = await readByPath(fetcher, ctx.contextId, 'slow.bin', 3);
  assert.ok(slow.data.equals(body));
  assert.equal(slow.digest, digest);

  await assert.rejects(
    readByPath(fetcher, ctx.contextId, 'missing.bin'),
    (err) => grpcCode(err) === status.NOT_FOUND,
  );
  await assert.rejects(
    readByPath(fetcher, ctx.contextId, '../x'),
    (err) => grpcCode(err) === status.INVALID_ARGUMENT,
  );
});

test('ReadBlob by context and path on a local context reads the stored file', async (t) => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'kindling-fetcher-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(join(dir, 'app.txt'), 'hello\n');
  const fetcher = await startTestFetcher(t);
  const ctx = await fetcher.resolve({ source: { $case: 'local', value: { path: dir } } });
  const read = await readByPath(fetcher, ctx.contextId, 'app.txt');
  assert.equal(read.data.toString(), 'hello\n');
  assert.equal(read.digest, `sha256:${createHash('sha256').update('hello\n').digest('hex')}`);
  await assert.rejects(
    readByPath(fetcher, ctx.contextId, '.'),
    (err) => grpcCode(err) === status.INVALID_ARGUMENT,
  );
});

test('a client cancelling ReadBlob mid-stream leaves the fetcher serving', async (t) => {
  const body = Buffer.alloc(24 * MiB, 5);
  const http = await startHttpServer(t, (req, res) => {
    if (req.url === '/ctx/Dockerfile') return res.end('FROM scratch\n');
    if (!req.url?.endsWith('.bin')) return res.writeHead(404).end();
    res.end(body);
  });
  const fetcher = await startTestFetcher(t);
  const ctx = await fetcher.resolve({
    source: { $case: 'http', value: { dockerfileUrl: `${http.url}/ctx/Dockerfile` } },
  });
  const listed = await fetcher.listFiles(ctx.contextId, ['blob.bin']);
  const digest = listed.sources[0]!.files[0]!.digest;
  for (const request of [
    { digest, offset: '0', contextId: '', path: '', copyTo: '', link: false },
    { digest: '', offset: '0', contextId: ctx.contextId, path: 'other.bin', copyTo: '', link: false },
  ]) {
    const call = fetcher.client.readBlob(request);
    await new Promise<void>((resolve) => {
      call.once('data', () => {
        call.cancel();
        resolve();
      });
    });
    await new Promise((resolve) => call.on('error', resolve));
  }
  await sleep(200);
  assert.ok((await fetcher.readBlob(digest)).equals(body));
});

test('a download that breaks while ReadBlob follows it fails that read (UNAVAILABLE), nothing else', async (t) => {
  const http = await startHttpServer(t, (req, res) => {
    if (req.url === '/ctx/Dockerfile') return res.end('FROM scratch\n');
    if (req.url === '/ctx/ok.txt') return res.end('fine\n');
    if (req.url !== '/ctx/breaks.bin') return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(4 * MiB) });
    res.write(Buffer.alloc(MiB, 7));
    setTimeout(() => res.destroy(), 50);
  });
  const fetcher = await startTestFetcher(t);
  const ctx = await fetcher.resolve({
    source: { $case: 'http', value: { dockerfileUrl: `${http.url}/ctx/Dockerfile` } },
  });
  await assert.rejects(readByPath(fetcher, ctx.contextId, 'breaks.bin'), (err) => {
    assert.equal(grpcCode(err), status.UNAVAILABLE);
    assert.match((err as Error).message, /breaks\.bin failed: the server closed the connection/);
    return true;
  });
  // The failed download's digest is never awaited: that must not take the process down.
  await sleep(200);
  const ok = await readByPath(fetcher, ctx.contextId, 'ok.txt');
  assert.equal(ok.data.toString(), 'fine\n');
  assert.deepEqual(await readdir(join(fetcher.cacheDir, 'tmp')), []);
});
