// Worker of block-hash-pool.ts (plain JavaScript: a worker thread needs no TypeScript loader). Hashes
// the 4 MiB blocks it is sent, reading them with blocking reads: this thread does nothing else.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { blake3 } from '@napi-rs/blake-hash';

const BLOCK_BYTES = 4 * 1024 * 1024;
const buffer = Buffer.allocUnsafe(BLOCK_BYTES);

parentPort.on('message', ({ id, path, size, blocks }) => {
  try {
    const hashes = Buffer.alloc(32 * blocks.length);
    const fd = openSync(path, 'r');
    try {
      blocks.forEach((block, i) => {
        const length = Math.min(BLOCK_BYTES, size - block * BLOCK_BYTES);
        for (let filled = 0; filled < length; ) {
          const read = readSync(fd, buffer, filled, length - filled, block * BLOCK_BYTES + filled);
          if (read === 0) throw new Error(`${path} shrank while its digest was taken`);
          filled += read;
        }
        blake3(buffer.subarray(0, length)).copy(hashes, 32 * i);
      });
    } finally {
      closeSync(fd);
    }
    parentPort.postMessage({ id, hashes });
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
