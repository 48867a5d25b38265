/**
 * ReadBlob's cache hand-off (copy_to): a consumer on the fetcher's host gets the blob as a new file
 * under the fetcher's --handoff-dir, its bytes never crossing gRPC; every misuse is refused with a
 * status that names it, and leaves no file behind.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import type { ReadBlobRequest, ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { startTestFetcher, tempDir, type TestFetcher } from './support.ts';

async function readAll(fetcher: TestFetcher, request: Partial<ReadBlobRequest>): Promise<ReadBlobResponse[]> {
  const stream = fetcher.client.readBlob({ digest: '', offset: '0', contextId: '', path: '', copyTo: '', link: false, ...request });
  const messages: ReadBlobResponse[] = [];
  for await (const message of stream as AsyncIterable<ReadBlobResponse>) messages.push(message);
  return messages;
}

async function storedBlob(fetcher: TestFetcher, t: Parameters<typeof tempDir>[0]): Promise<{ digest: string; content: Buffer }> {
  const context = await tempDir(t, 'kindling-handoff-context-');
  const content = Buffer.alloc(3 * 1024 * 1024 + 17, 'kindling ');
  await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /\n');
  await writeFile(join(context, 'big.bin'), content);
  const { contextId } = await fetcher.resolve({ source: { $case: 'local', value: { path: context } }, dockerfilePath: '' });
  const listing = await fetcher.listFiles(contextId, ['big.bin']);
  const digest = listing.sources[0]!.files[0]!.digest;
  return { digest, content };
}

test('copy_to copies the cached blob to a new file under --handoff-dir and answers its size and digest, no data', async (t) => {
  const handoff = await tempDir(t, 'kindling-handoff-');
  const fetcher = await startTestFetcher(t, [`--handoff-dir=${handoff}`]);
  const { digest, content } = await storedBlob(fetcher, t);
  await mkdir(join(handoff, 'build-1'));
  const destination = join(handoff, 'build-1', 'big.bin');

  const messages = await readAll(fetcher, { digest, copyTo: destination });
  assert.equal(messages.length, 1);
  assert.deepEqual([messages[0]!.data.length, messages[0]!.totalSize, messages[0]!.digest], [0, String(content.length), digest]);
  const copied = await readFile(destination);
  assert.equal(`sha256:${createHash('sha256').update(copied).digest('hex')}`, digest);

  // a second hand-off to the same path would overwrite the consumer's file: refused
  await assert.rejects(readAll(fetcher, { digest, copyTo: destination }), (e: ServiceError) => e.code === status.ALREADY_EXISTS && e.details.includes(destination));
  // outside the hand-off directory, relative or un-normalized: refused, nothing written
  for (const path of ['/tmp/elsewhere.bin', 'relative.bin', `${handoff}/build-1/../../escape.bin`]) {
    await assert.rejects(readAll(fetcher, { digest, copyTo: path }), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && e.details.includes('hand-off directory'));
  }
  await assert.rejects(readAll(fetcher, { digest, copyTo: join(handoff, 'no-such-dir', 'x') }), (e: ServiceError) => e.code === status.NOT_FOUND);
  await assert.rejects(readAll(fetcher, { digest: `sha256:${'0'.repeat(64)}`, copyTo: join(handoff, 'absent.bin') }), (e: ServiceError) => e.code === status.NOT_FOUND);
  await assert.rejects(readAll(fetcher, { digest, offset: '5', copyTo: join(handoff, 'offset.bin') }), (e: ServiceError) => e.code === status.INVALID_ARGUMENT);
  assert.deepEqual((await readdir(handoff)).sort(), ['build-1']);
  assert.deepEqual(await readdir(join(handoff, 'build-1')), ['big.bin']);
});

test('copy_to on a fetcher without --handoff-dir is FAILED_PRECONDITION naming the setting', async (t) => {
  const fetcher = await startTestFetcher(t);
  const { digest } = await storedBlob(fetcher, t);
  const destination = join(await tempDir(t, 'kindling-handoff-off-'), 'big.bin');
  await assert.rejects(readAll(fetcher, { digest, copyTo: destination }), (e: ServiceError) => e.code === status.FAILED_PRECONDITION && e.details.includes('--handoff-dir'));
});

test('copy_to with link hands over the cached file itself, read-only, and copies across filesystems', async (t) => {
  const handoff = await tempDir(t, 'kindling-handoff-link-');
  const fetcher = await startTestFetcher(t, [`--handoff-dir=${handoff}`]);
  const { digest, content } = await storedBlob(fetcher, t);
  const destination = join(handoff, 'linked.bin');

  const [answer] = await readAll(fetcher, { digest, copyTo: destination, link: true });
  assert.deepEqual([answer!.linked, answer!.totalSize, answer!.digest], [true, String(content.length), digest]);
  const cached = await findFile(fetcher.cacheDir, digest.slice('sha256:'.length));
  const [handed, stored] = await Promise.all([stat(destination), stat(cached)]);
  assert.equal(handed.ino, stored.ino, 'the hand-off is the cache file itself: no byte copied');
  assert.equal(handed.mode & 0o777, 0o444, 'the shared file is read-only');
  assert.deepEqual(await readFile(destination), content);
  // the cache dropping its name (eviction) leaves the consumer's link whole
  await unlink(cached);
  assert.deepEqual(await readFile(destination), content);

  // a hand-off directory on another filesystem (tmpfs): the same request copies, and says so
  const elsewhere = await mkdtemp('/dev/shm/kindling-handoff-xdev-');
  t.after(() => rm(elsewhere, { recursive: true, force: true }));
  const other = await startTestFetcher(t, [`--handoff-dir=${elsewhere}`]);
  const second = await storedBlob(other, t);
  const [copied] = await readAll(other, { digest: second.digest, copyTo: join(elsewhere, 'copied.bin'), link: true });
  assert.equal(copied!.linked, false);
  assert.deepEqual(await readFile(join(elsewhere, 'copied.bin')), second.content);
});

async function findFile(dir: string, name: string): Promise<string> {
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name === name) return join(entry.parentPath, entry.name);
  }
  throw new Error(`no ${name} under ${dir}`);
}
