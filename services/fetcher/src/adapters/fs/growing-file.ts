import { open } from 'node:fs/promises';
import type { GrowingFile, GrowingFileReader } from '../../ports/growing-file.ts';
import { allocWithHeadroom, keepsHeadroom } from './headroom.ts';

/** Reads a temporary download file by position; its descriptor stays valid after the file is renamed into the store. */
export class FsGrowingFileReader implements GrowingFileReader {
  constructor(private readonly chunkSize = 1024 * 1024) {}

  async open(path: string): Promise<GrowingFile> {
    const handle = await open(path, 'r');
    const chunkSize = this.chunkSize;
    return {
      async read(offset, end) {
        const length = Math.min(chunkSize, end - offset);
        if (length <= 0) return Buffer.alloc(0);
        const buffer = allocWithHeadroom(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        return keepsHeadroom(buffer, buffer.subarray(0, bytesRead));
      },
      close: () => handle.close(),
    };
  }
}
