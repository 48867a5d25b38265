// PutFiles' fast path: blobs read from the fetcher's cache directory on this host (falling back to
// ReadBlob), and sha256 checks on a worker thread. The ReadBlob path is covered by grpc.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import type { PutFilesRequest } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { WorkerSha256Hashing } from '../src/adapters/crypto/worker-sha256.ts';
import { FetcherCacheBlobSource } from '../src/adapters/fs/fetcher-cache-blob-source.ts';
import { DigestCheckedStream } from '../src/domain/byte-streams.ts';
import type { BlobSource, SelfHashedBlob } from '../src/ports/blob-source.ts';
import { digestOf } from './support/context-files.ts';
import { memoryBlobSource } from './support/provisioner-fixture.ts';
import { startProvisionerSuite } from './support/provisioner-suite.ts';
import { sshdUnavailableReason } from './support/test-sshd.ts';

const skip = await sshdUnavailableReason();
const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function openDescriptorsOf(path: string): Promise<number> {
  const targets = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target === path).length;
}

async function collect(chunks: AsyncIterable<Buffer> | SelfHashedBlob): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

test('the worker sha256 agrees with node:crypto, keeps concurrent hashes apart and forgets discarded ones', async (t) => {
  const hashing = new WorkerSha256Hashing();
  t.after(() => hashing.close());
  const one = randomBytes(9 * 1024 * 1024 + 17);
  const two = randomBytes(3 * 1024 * 1024);
  const [a, b, dropped] = [hashing.start(one.length), hashing.start(two.length), hashing.start(two.length)];
  for (let offset = 0; offset < one.length; offset += 256 * 1024) {
    const chunk = Buffer.from(one.subarray(offset, offset + 256 * 1024));
    await a.update(chunk);
    chunk.fill(0); // the caller may reuse its buffer at once
    if (offset < two.length) await b.update(two.subarray(offset, offset + 256 * 1024));
    await dropped.update(two.subarray(0, 1024));
  }
  dropped.discard();
  assert.equal(await a.hexDigest(), sha256Hex(one));
  assert.equal(await b.hexDigest(), sha256Hex(two));
  await assert.rejects(dropped.hexDigest(), /discarded/);
  assert.equal(await hashing.start(5).hexDigest(), sha256Hex(Buffer.alloc(0)), 'small blobs are hashed inline');
});

test("FetcherCacheBlobSource reads the fetcher's cache and falls back to ReadBlob for what is not there", async (t) => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'kindling-test-cache-'));
  t.after(() => rm(cacheDir, { recursive: true, force: true }));
  await mkdir(join(cacheDir, 'sha256'));
  const cached = randomBytes(3 * 1024 * 1024 + 5);
  await writeFile(join(cacheDir, 'sha256', sha256Hex(cached)), cached);
  const remote = Buffer.from('only the fetcher has me');
  const asked: string[] = [];
  const memory = memoryBlobSource(new Map([[digestOf(remote), remote]]));
  const fallback: BlobSource = { read: (digest, signal) => (asked.push(digest), memory.read(digest, signal)) };
  const source = new FetcherCacheBlobSource(cacheDir, fallback);
  t.after(() => source.close());
  const small = Buffer.from('a small cached blob');
  await writeFile(join(cacheDir, 'sha256', sha256Hex(small)), small);

  for (const data of [cached, small]) {
    const blob = source.read(digestOf(data));
    assert.deepEqual(await collect(blob), data);
    assert.equal(await blob.yieldedSha256(), sha256Hex(data), 'the source hashes what it yields');
  }
  assert.deepEqual(asked, [], 'a cached blob never goes to the fetcher');
  const fromFetcher = source.read(digestOf(remote));
  assert.deepEqual(await collect(fromFetcher), remote);
  assert.equal(await fromFetcher.yieldedSha256(), sha256Hex(remote));
  // abandoning a read half-way leaves nothing behind (the worker lets go of the descriptor first)
  for await (const _chunk of source.read(digestOf(cached))) break;
  const again = source.read(digestOf(cached));
  assert.deepEqual(await collect(again), cached);
  // a copy that fails part-way discards its check, which closes the blob file it was reading
  const check = new DigestCheckedStream(source.read(digestOf(cached)), digestOf(cached), 'cached');
  await check[Symbol.asyncIterator]().next();
  const blobFile = join(cacheDir, 'sha256', sha256Hex(cached));
  assert.equal(await openDescriptorsOf(blobFile), 1);
  check.discard();
  for (let i = 0; i < 100 && (await openDescriptorsOf(blobFile)) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(await openDescriptorsOf(blobFile), 0);
  await assert.rejects(collect(source.read('sha256:../../etc/passwd')), /not found/, 'a malformed digest never becomes a path');
  assert.deepEqual(asked, [digestOf(remote), 'sha256:../../etc/passwd']);
  const aborted = new AbortController();
  aborted.abort(new Error('stop'));
  await assert.rejects(collect(source.read(digestOf(cached), aborted.signal)), /stop/);
});

test("PutFiles with --fetcher-cache-dir reads blobs from the fetcher's cache and still checks their digest", { skip }, async (t) => {
  const suite = await startProvisionerSuite({ localBlobs: true });
  const guest = await mkdtemp(join(tmpdir(), 'kindling-test-guest-'));
  t.after(async () => {
    await suite.stop();
    await rm(guest, { recursive: true, force: true });
  });
  await mkdir(suite.contextDir, { recursive: true });
  await writeFile(join(suite.contextDir, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(join(suite.contextDir, 'small.txt'), 'listed by the fetcher\n');
  const context = await suite.resolveContext();
  const listing = await suite.listFiles(context.contextId, ['small.txt']);
  const template = listing.sources[0]?.files[0];
  assert.ok(template);
  // A blob only the cache directory holds (the fetcher's ReadBlob would say NOT_FOUND): PutFiles must read it there.
  const data = randomBytes(6 * 1024 * 1024 + 3);
  const blobPath = join(suite.fetcherCacheDir, 'sha256', sha256Hex(data));
  await writeFile(blobPath, data);
  const request = (destination: string): PutFilesRequest => ({
    target: suite.target,
    contextId: context.contextId,
    sources: [{ pattern: 'big.bin', files: [{ ...template, path: 'big.bin', matchRoot: 'big.bin', size: String(data.length), digest: digestOf(data), mode: 0o600 }] }],
    destination,
    workingDir: '',
    chown: '',
    extractArchives: false,
    preserveOwnership: false,
    buildId: 'b-test',
    stepIndex: 1,
  });

  const response = await suite.putFiles(request(join(guest, 'copied.bin')));
  assert.equal(response.filesWritten, 1);
  assert.deepEqual(await readFile(join(guest, 'copied.bin')), data);

  const tampered = Buffer.from(data);
  tampered.writeUInt8(tampered.readUInt8(tampered.length - 1) ^ 1, tampered.length - 1);
  await writeFile(blobPath, tampered);
  await assert.rejects(
    suite.putFiles(request(join(guest, 'tampered.bin'))),
    (error: ServiceError) => error.code === status.INTERNAL && /did not match/.test(error.details),
  );
  assert.deepEqual((await readdir(guest)).sort(), ['copied.bin'], 'neither the file nor its temp copy is left behind');
});
