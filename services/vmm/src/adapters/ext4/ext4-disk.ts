import { link, mkdtemp, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ext4Disk, GuestDirectory, GuestFile } from '../../ports/disk.ts';
import { stagingName } from '../fs/atomic-file.ts';
import { startHashThreads } from '../fs/block-hash-pool.ts';
import { blockListDigest, blockListDigestAround } from '../fs/block-list-digest.ts';
import { runCommand } from '../exec/run-command.ts';
import { checkGuestPath, debugfsDumpThenWrite, debugfsScript, missingPaths, runDebugfs, undoFileRanges } from './debugfs.ts';
import { exportTar, ext4FromTar } from './ext4-archive.ts';
import { resolveImagePath } from './image-paths.ts';

/** ext4 images handled with e2fsprogs and coreutils only: nothing is ever mounted. */
export class E2fsprogsExt4Disk implements Ext4Disk {
  /** `scratchRoot` holds the private copies an export or an upload passes through (the vmm's state dir). */
  constructor(private readonly scratchRoot: string = join(tmpdir(), 'kindling-vmm-scratch')) {
    startHashThreads();
  }

  async copy(source: string, destination: string, signal?: AbortSignal): Promise<void> {
    const temp = stagingName(destination);
    try {
      // GNU cp clones where the filesystem supports it and otherwise skips holes via SEEK_DATA.
      await runCommand('cp', ['--reflink=auto', '--sparse=always', source, temp], signal ? { signal } : {});
      await rename(temp, destination);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async link(source: string, destination: string): Promise<boolean> {
    return link(source, destination).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'EXDEV') return false;
        throw error;
      },
    );
  }

  async filesystemBytes(image: string): Promise<number> {
    const { stdout } = await runCommand('dumpe2fs', ['-h', image]);
    const text = stdout.toString('utf8');
    const count = /^Block count:\s+(\d+)/m.exec(text)?.[1];
    const size = /^Block size:\s+(\d+)/m.exec(text)?.[1];
    if (!count || !size)
      throw new Error(`dumpe2fs -h ${image} printed no block count/size: is it an ext4 image?`);
    return Number(count) * Number(size);
  }

  async grow(image: string, bytes: number): Promise<void> {
    const { size } = await stat(image);
    if (bytes > size) await truncate(image, bytes);
    await runCommand('resize2fs', [image]);
  }

  async shrinkToMinimum(image: string): Promise<void> {
    // resize2fs -M insists on a freshly checked filesystem; -p repairs only what is safe.
    await runCommand('e2fsck', ['-f', '-p', image]);
    await runCommand('resize2fs', ['-M', image]);
  }

  async writeFiles(image: string, directories: GuestDirectory[], files: GuestFile[]): Promise<void> {
    const scratch = await mkdtemp(join(tmpdir(), 'kindling-inject-'));
    try {
      const staged = await Promise.all(
        files.map(async (file, index) => {
          const hostPath = join(scratch, String(index));
          await writeFile(hostPath, file.content, { mode: 0o600 });
          return { ...file, hostPath };
        }),
      );
      const missing = await missingPaths(
        image,
        directories.map((d) => d.path),
      );
      await runDebugfs(image, debugfsScript(directories, staged, missing), { write: true });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  async readFiles(image: string, guestPaths: string[]): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    if (guestPaths.length === 0) return found;
    guestPaths.forEach(checkGuestPath);
    // One debugfs run dumps them all; a missing file simply produces no dump.
    const scratch = await mkdtemp(join(tmpdir(), 'kindling-read-'));
    try {
      const script = guestPaths.map((path, index) => `dump ${path} ${join(scratch, String(index))}\n`);
      await runDebugfs(image, script.join(''), { write: false });
      await Promise.all(
        guestPaths.map(async (path, index) => {
          const content = await readFile(join(scratch, String(index))).catch(ignoreMissing);
          if (content) found.set(path, content);
        }),
      );
      return found;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  async removeFiles(image: string, guestPaths: string[]): Promise<void> {
    await runDebugfs(image, guestPaths.map((p) => `rm ${p}\n`).join(''), { write: true });
  }

  digest(image: string, signal?: AbortSignal): Promise<string> {
    return blockListDigest(image, signal);
  }

  /**
   * One debugfs run dumps the files (for keep), then removes them, writing an undo file (-z): its
   * index names every block the run wrote, so the digest hashes the image meanwhile and only those
   * blocks again after. The undo file and the dumps go to /dev/shm where there is one (fsyncs there
   * cost nothing), in a directory only root reads.
   */
  removeFilesAndDigest(
    image: string,
    guestPaths: string[],
    keep?: (found: Map<string, Buffer>) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<string> {
    guestPaths.forEach(checkGuestPath);
    return blockListDigestAround(
      image,
      async () => {
        const scratch = await mkdtemp(join(await fastScratchRoot(), 'kindling-strip-'));
        try {
          const undoFile = join(scratch, 'undo');
          const dumps = keep ? guestPaths.map((path, index) => ({ path, hostPath: join(scratch, String(index)) })) : [];
          const between = keep
            ? async () => {
                const found = new Map<string, Buffer>();
                for (const { path, hostPath } of dumps) {
                  const content = await readFile(hostPath).catch(ignoreMissing);
                  if (content) found.set(path, content);
                }
                await keep(found);
              }
            : undefined;
          const requests = guestPaths.map((p) => `rm ${p}\n`).join('');
          // no signal: a debugfs killed halfway through its writes would leave the filesystem broken
          await debugfsDumpThenWrite(image, { dumps, requests, undoFile, ...(between ? { between } : {}) });
          return await undoFileRanges(undoFile);
        } finally {
          await rm(scratch, { recursive: true, force: true });
        }
      },
      signal,
    );
  }

  async absentPaths(image: string, guestPaths: string[], signal?: AbortSignal): Promise<Set<string>> {
    const absent = new Set<string>();
    for (const path of guestPaths) if (!(await resolveImagePath(image, path, signal))) absent.add(path);
    return absent;
  }

  exportTar(image: string, guestPaths: string[], signal: AbortSignal): AsyncIterable<Buffer> {
    return exportTar(image, guestPaths, this.scratchRoot, signal);
  }

  fromTar(archive: AsyncIterable<Uint8Array>, destination: string, extraBytes: number, signal: AbortSignal): Promise<void> {
    return ext4FromTar(archive, destination, extraBytes, this.scratchRoot, signal);
  }

  /** Removes the scratch copies a crash left behind (none is in use before the service starts). */
  async sweepScratch(): Promise<void> {
    await rm(this.scratchRoot, { recursive: true, force: true });
  }
}

let fastScratch: Promise<string> | undefined;
/** /dev/shm when it is a directory (tmpfs), else the temporary directory. */
function fastScratchRoot(): Promise<string> {
  fastScratch ??= stat('/dev/shm').then(
    (found) => (found.isDirectory() ? '/dev/shm' : tmpdir()),
    () => tmpdir(),
  );
  return fastScratch;
}

function ignoreMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}
