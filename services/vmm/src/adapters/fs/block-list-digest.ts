import { open, stat } from 'node:fs/promises';
import { blake3 } from '@napi-rs/blake-hash';
import { runCommand } from '../exec/run-command.ts';
import { hashBlocksOnThreads, hashThreads } from './block-hash-pool.ts';

/**
 * An image's content address: BLAKE3 over the BLAKE3 of each 4 MiB block of the file, in order
 * (the last block may be shorter). Any tool can check it:
 *   split -b 4M --filter='b3sum --raw' rootfs.ext4 | b3sum --no-names
 * Because each block is hashed on its own, a block the file has no data in (a hole of a sparse
 * image) has a known hash and is never read: the cost follows the bytes the image uses, not its
 * apparent size. Holes and written zeros give the same digest: it addresses content, not layout.
 */
export const BLOCK_LIST_ALGORITHM = 'blake3-blocks-4m';
export const BLOCK_BYTES = 4 * 1024 * 1024;

export async function blockListDigest(path: string, signal?: AbortSignal): Promise<string> {
  const { size } = await stat(path);
  const blocks = Math.ceil(size / BLOCK_BYTES);
  const dataBlocks = (await blocksWithData(path, size)) ?? Array.from({ length: blocks }, (_, i) => i);
  const dataHashes = await hashSome(path, size, dataBlocks, signal);
  // every block not listed is a hole: it reads as zeros
  const hashes = Buffer.alloc(32 * blocks);
  for (let block = 0; block < blocks; block++) zeroBlockHash(blockLength(block, size)).copy(hashes, 32 * block);
  dataBlocks.forEach((block, i) => dataHashes.copy(hashes, 32 * block, 32 * i, 32 * i + 32));
  return `${BLOCK_LIST_ALGORITHM}:${blake3(hashes).toString('hex')}`;
}

/** Bytes of a file a change wrote (or may have written). */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * blockListDigest of the file as `change` leaves it, its reading overlapping the change: every block
 * is hashed while `change` runs, then those it wrote (the ranges it resolves, block 0 always: the
 * superblock's) are hashed again. `change` must name every byte it writes, or resolve undefined
 * (then the whole file is hashed again); it must not resize the file (if it does, the same).
 */
export async function blockListDigestAround(
  path: string,
  change: () => Promise<readonly ByteRange[] | undefined>,
  signal?: AbortSignal,
): Promise<string> {
  const { size } = await stat(path);
  const blocks = Math.ceil(size / BLOCK_BYTES);
  const listing = blocksWithData(path, size); // filefrag starts first: the hashing waits for its list
  const changed = change();
  let firstPass: number[];
  let before: Promise<Buffer>;
  try {
    const dataBlocks = (await listing) ?? Array.from({ length: blocks }, (_, i) => i);
    // block 0 (the superblock's, the group descriptors') is hashed after the change only: it always writes there
    firstPass = dataBlocks.filter((block) => block !== 0);
    before = hashSome(path, size, firstPass, signal);
    before.catch(() => undefined); // awaited below, once the change is done
  } catch (error) {
    await changed.catch(() => undefined); // never return while the change still writes
    throw error;
  }
  const written = await changed;
  if (!written || (await stat(path)).size !== size) {
    await before.catch(() => undefined);
    return blockListDigest(path, signal);
  }
  const again = new Set<number>(blocks > 0 ? [0] : []);
  for (const { offset, length } of written) {
    if (length <= 0) continue;
    const last = Math.min(Math.floor((offset + length - 1) / BLOCK_BYTES), blocks - 1);
    for (let block = Math.floor(offset / BLOCK_BYTES); block <= last; block++) again.add(block);
  }
  const rehashed = [...again].sort((a, b) => a - b);
  const [dataHashes, rehashes] = await Promise.all([before, hashSome(path, size, rehashed, signal)]);
  const hashes = Buffer.alloc(32 * blocks);
  for (let block = 0; block < blocks; block++) zeroBlockHash(blockLength(block, size)).copy(hashes, 32 * block);
  firstPass.forEach((block, i) => dataHashes.copy(hashes, 32 * block, 32 * i, 32 * i + 32));
  rehashed.forEach((block, i) => rehashes.copy(hashes, 32 * block, 32 * i, 32 * i + 32));
  return `${BLOCK_LIST_ALGORITHM}:${blake3(hashes).toString('hex')}`;
}

/** A few blocks are hashed here; more go to a thread per core (starting them costs milliseconds). */
const hashSome = (path: string, size: number, blocks: number[], signal?: AbortSignal): Promise<Buffer> =>
  blocks.length > 2 * hashThreads ? hashBlocksOnThreads(path, size, blocks, signal) : hashBlocks(path, size, blocks, signal);

/** BLAKE3 of each block, concatenated: the next block is read on the thread pool while this one is hashed. */
async function hashBlocks(
  path: string,
  size: number,
  dataBlocks: number[],
  signal?: AbortSignal,
): Promise<Buffer> {
  const hashes = Buffer.alloc(32 * dataBlocks.length);
  const handle = await open(path, 'r');
  let pending: Promise<Buffer> | undefined;
  try {
    const buffers = [Buffer.allocUnsafe(BLOCK_BYTES), Buffer.allocUnsafe(BLOCK_BYTES)] as const;
    const read = async (block: number, buffer: Buffer): Promise<Buffer> => {
      const length = blockLength(block, size);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(
          buffer,
          filled,
          length - filled,
          block * BLOCK_BYTES + filled,
        );
        if (bytesRead === 0) throw new Error(`${path} shrank while its digest was taken`);
        filled += bytesRead;
      }
      return buffer.subarray(0, length);
    };
    pending = dataBlocks.length > 0 ? read(dataBlocks[0]!, buffers[0]) : undefined;
    for (let i = 0; i < dataBlocks.length; i++) {
      signal?.throwIfAborted();
      const block = await pending!;
      pending = i + 1 < dataBlocks.length ? read(dataBlocks[i + 1]!, buffers[(i + 1) % 2]!) : undefined;
      blake3(block).copy(hashes, 32 * i);
    }
  } finally {
    await pending?.catch(() => undefined); // a read still in flight when aborted
    await handle.close();
  }
  return hashes;
}

const blockLength = (block: number, size: number): number =>
  Math.min(BLOCK_BYTES, size - block * BLOCK_BYTES);

const zeroHashes = new Map<number, Buffer>();
function zeroBlockHash(length: number): Buffer {
  let hash = zeroHashes.get(length);
  if (!hash) {
    hash = blake3(Buffer.alloc(length));
    zeroHashes.set(length, hash);
  }
  return hash;
}

/**
 * Indexes of the 4 MiB blocks that hold any extent of the file, from FIEMAP (e2fsprogs filefrag).
 * No sync first: ext4, XFS and btrfs list data still in the page cache as delalloc extents, and a
 * sync would force a freshly copied image out to disk. Undefined where the filesystem cannot say
 * (e.g. tmpfs): then every block is read, which gives the same digest, only slower.
 */
export async function blocksWithData(path: string, size: number): Promise<number[] | undefined> {
  const output = await runCommand('filefrag', ['-e', path]).then(
    ({ stdout }) => stdout.toString('utf8'),
    () => undefined,
  );
  if (!output) return undefined;
  const blockSize = Number(/ blocks of (\d+) bytes\)/.exec(output)?.[1]);
  if (!/^\s*ext:\s+logical_offset:/m.test(output) || !(blockSize > 0)) return undefined;
  const blocks = new Set<number>();
  for (const match of output.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)) {
    const first = Math.floor((Number(match[1]) * blockSize) / BLOCK_BYTES);
    const last = Math.floor(Math.min((Number(match[2]) + 1) * blockSize - 1, size - 1) / BLOCK_BYTES);
    for (let block = first; block <= last; block++) blocks.add(block);
  }
  return [...blocks].sort((a, b) => a - b);
}
