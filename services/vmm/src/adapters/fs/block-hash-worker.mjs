// Hashes a run of 4 MiB blocks of one file with BLAKE3 for blockListDigest, on another core.
// Plain JavaScript: worker threads do not get tsx's loader.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { blake3 } from '@napi-rs/blake-hash';

const { path, size, blockBytes, blocks } = workerData;
const fd = openSync(path, 'r');
const buffer = Buffer.allocUnsafe(blockBytes);
const hashes = Buffer.alloc(32 * blocks.length);
try {
  blocks.forEach((block, index) => {
    const length = Math.min(blockBytes, size - block * blockBytes);
    for (let filled = 0; filled < length;) {
      const read = readSync(fd, buffer, filled, length - filled, block * blockBytes + filled);
      if (read === 0) throw new Error(`${path} shrank while its digest was taken`);
      filled += read;
    }
    blake3(buffer.subarray(0, length)).copy(hashes, 32 * index);
  });
} finally {
  closeSync(fd);
}
parentPort.postMessage(hashes);
