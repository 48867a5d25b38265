import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BLOCK_BYTES, blockListDigest, blocksWithData } from '../src/adapters/fs/block-list-digest.ts';
import { hashThreads } from '../src/adapters/fs/block-hash-pool.ts';
import { referenceDigest } from './support/reference-digest.ts';

const MiB = 1024 * 1024;
const missingTool = ['b3sum', 'filefrag', 'split'].find((tool) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});

describe('block-list digest', { skip: missingTool ? `needs ${missingTool}` : false }, () => {
  let dir: string;
  let sparse: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kindling-digest-'));
    // 26.5 MiB, mostly holes: data in block 0, a zero-filled write in block 2, data across blocks 4/5.
    sparse = join(dir, 'sparse.img');
    const file = await open(sparse, 'w');
    await file.write(Buffer.alloc(4096, 1), 0, 4096, 0);
    await file.write(Buffer.alloc(MiB), 0, MiB, 2 * BLOCK_BYTES + 4096);
    await file.write(Buffer.alloc(2 * MiB, 7), 0, 2 * MiB, 5 * BLOCK_BYTES - MiB);
    await file.truncate(26.5 * MiB);
    await file.close();
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('matches split | b3sum on a sparse file and reads only the blocks holding extents', async () => {
    assert.equal(await blockListDigest(sparse), referenceDigest(sparse));
    assert.deepEqual(await blocksWithData(sparse, (await stat(sparse)).size), [0, 2, 4, 5]);
  });

  it('addresses content, not layout: the same bytes written out densely give the same digest', async () => {
    const dense = join(dir, 'dense.img');
    execFileSync('cp', ['--sparse=never', sparse, dense]);
    assert.ok((await stat(dense)).blocks * 512 >= 26 * MiB, 'the copy has no holes');
    assert.equal(await blockListDigest(dense), await blockListDigest(sparse));
  });

  it('reads every block where the filesystem cannot map extents (tmpfs), with the same result', async (t) => {
    if (!existsSync('/dev/shm')) return t.skip('needs /dev/shm');
    const shm = await mkdtemp('/dev/shm/kindling-digest-');
    try {
      const copy = join(shm, 'sparse.img');
      execFileSync('cp', ['--sparse=always', sparse, copy]);
      assert.equal(await blocksWithData(copy, (await stat(copy)).size), undefined);
      assert.equal(await blockListDigest(copy), await blockListDigest(sparse));
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  it('gives the same digest when the blocks are hashed on worker threads (an image with many data blocks)', async () => {
    const large = join(dir, 'large.img');
    const file = await open(large, 'w');
    // data in 12 of 20 blocks (more than the threads' threshold), the last one shorter
    for (const block of [0, 1, 2, 3, 5, 6, 8, 9, 10, 12, 15, 19]) {
      await file.write(Buffer.alloc(MiB, block + 1), 0, MiB, block * BLOCK_BYTES + 3 * MiB);
    }
    await file.truncate(19 * BLOCK_BYTES + 3.5 * MiB);
    await file.close();
    assert.ok((await blocksWithData(large, (await stat(large)).size))!.length > 2 * hashThreads);
    assert.equal(await blockListDigest(large), referenceDigest(large));
    await assert.rejects(blockListDigest(large, AbortSignal.abort()), { name: 'AbortError' });
  });

  it('changes with one changed byte, and stops when aborted', async () => {
    const changed = join(dir, 'changed.img');
    execFileSync('cp', ['--sparse=always', sparse, changed]);
    const file = await open(changed, 'r+');
    await file.write(Buffer.from([2]), 0, 1, 5 * BLOCK_BYTES + 10);
    await file.close();
    assert.notEqual(await blockListDigest(changed), await blockListDigest(sparse));
    await assert.rejects(blockListDigest(sparse, AbortSignal.abort()), { name: 'AbortError' });
  });
});
