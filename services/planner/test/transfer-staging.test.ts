import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileType, type FileEntry } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { WriteVmTransferHeader } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import type { BuildContextSource, BuildVmHost } from '../src/ports/build-services.ts';
import { FailedPreconditionError } from '@kindling/runtime';
import { stageLargeFiles } from '../src/execution/transfer-staging.ts';

const MIB = 1024 * 1024;
const entry = (path: string, size: number, digest: string, type = FileType.FILE_TYPE_REGULAR): FileEntry => ({
  path, type, size: String(size), mode: 0o644, uid: 0, gid: 0, digest, linkTarget: '', mtime: undefined, matchRoot: path,
});

test('the large regular files of a copy go to the transfer disk, MiB-aligned, once per digest, while they fit', async () => {
  const writes: WriteVmTransferHeader[] = [];
  const vmHost = {
    writeTransfer: async (header: WriteVmTransferHeader, bytes: AsyncIterable<Uint8Array>) => {
      for await (const chunk of bytes) void chunk;
      // only a.bin is in the fetcher cache of the vmm's host: the others are streamed to it
      if (header.fromFetcherCache && header.digest !== 'sha256:a') throw new FailedPreconditionError('not in the fetcher cache');
      if (header.digest === 'sha256:broken') throw new Error('vmm refused it');
      writes.push(header);
    },
  } as unknown as BuildVmHost;
  const read: string[] = [];
  const context = {
    readBlob: async function* (digest: string) {
      read.push(digest);
      yield Buffer.from(digest);
    },
  } as unknown as BuildContextSource;
  const warnings: string[] = [];
  const services = { vmHost, context, warn: (message: string) => warnings.push(message) };
  const files = [
    entry('small.txt', MIB - 1, 'sha256:small'),
    entry('a.bin', 1.5 * MIB, 'sha256:a'),
    entry('dir', 4 * MIB, '', FileType.FILE_TYPE_DIRECTORY),
    entry('copy-of-a.bin', 1.5 * MIB, 'sha256:a'),
    entry('broken.bin', 2 * MIB, 'sha256:broken'),
    entry('b.bin', 2 * MIB, 'sha256:b'),
    entry('too-big.bin', 3 * MIB, 'sha256:big'),
    entry('c.bin', MIB, 'sha256:c'),
  ];
  const disk = { vmId: 'vm-1', device: '/dev/vdb', bytes: 6 * MIB };
  const signal = new AbortController().signal;
  const staged = await stageLargeFiles(services, disk, [{ pattern: '*', files }], signal);
  assert.deepEqual(staged, {
    device: '/dev/vdb',
    blobs: [
      { digest: 'sha256:a', offset: String(0) },
      { digest: 'sha256:b', offset: String(2 * MIB) },
      { digest: 'sha256:c', offset: String(4 * MIB) },
    ],
  });
  assert.deepEqual(
    writes.map((w) => [w.vmId, w.size, w.fromFetcherCache]),
    [['vm-1', String(1.5 * MIB), true], ['vm-1', String(2 * MIB), false], ['vm-1', String(MIB), false]],
  );
  assert.deepEqual(read, ['sha256:broken', 'sha256:b', 'sha256:c'], 'the cached blob, and small, duplicate and oversized files are not read');
  assert.deepEqual(warnings, ['could not stage broken.bin on the transfer disk; it goes through SSH']);
  assert.equal(await stageLargeFiles(services, undefined, [{ pattern: '*', files }], signal), undefined, 'no disk, nothing staged');
});
