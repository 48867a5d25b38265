/**
 * Worker threads that hash 4 MiB blocks of a file, one per core: an image's digest is read and hashed
 * on every core at once instead of on the event loop's thread alone. Started on first use, kept,
 * and replaced when one dies; an idle thread is unref'd so it never holds the process open.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

interface Job {
  resolve(hashes: Buffer): void;
  reject(error: Error): void;
}

class BlockHashWorker {
  private readonly worker: Worker;
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  dead = false;

  constructor() {
    this.worker = new Worker(new URL('./block-hash-worker.mjs', import.meta.url), { execArgv: [] });
    this.worker.on('message', ({ id, hashes, error }: { id: number; hashes?: Uint8Array; error?: string }) => {
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      if (this.jobs.size === 0) this.worker.unref();
      if (error !== undefined || !hashes) job?.reject(new Error(error ?? 'the hashing thread sent no hashes'));
      else job?.resolve(Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength));
    });
    const fail = (error: Error): void => {
      this.dead = true;
      for (const job of this.jobs.values()) job.reject(error);
      this.jobs.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the hashing thread exited (code ${code})`)));
    // after the listeners: adding a 'message' listener refs the worker again
    this.worker.unref();
  }

  hash(path: string, size: number, blocks: number[]): Promise<Buffer> {
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      // ref'd while it works: the process must wait for the hashes it awaits
      this.worker.ref();
      this.worker.postMessage({ id, path, size, blocks });
    });
  }
}

const workers: BlockHashWorker[] = [];

/** How many threads hash at once: the cores there are, at most 4 (beyond, the reads are the limit). */
export const hashThreads = Math.min(4, availableParallelism());

/**
 * Starts the threads ahead of the first digest (a thread and its BLAKE3 module take ≈50 ms to load,
 * a third of a commit); idle, they hold nothing open.
 */
export function startHashThreads(): void {
  for (let i = 0; i < hashThreads; i++) if (!workers[i] || workers[i]!.dead) workers[i] = new BlockHashWorker();
}

/**
 * BLAKE3 of each listed block, concatenated in the order given: contiguous runs of the list go to
 * the threads, so each reads its part of the file sequentially.
 */
export async function hashBlocksOnThreads(path: string, size: number, blocks: number[], signal?: AbortSignal): Promise<Buffer> {
  signal?.throwIfAborted();
  startHashThreads();
  const share = Math.ceil(blocks.length / hashThreads);
  const parts = Array.from({ length: hashThreads }, (_, i) => blocks.slice(i * share, (i + 1) * share)).filter((p) => p.length > 0);
  const hashed = Promise.all(parts.map((part, i) => workers[i]!.hash(path, size, part)));
  if (!signal) return Buffer.concat(await hashed);
  // an abort answers at once; the threads finish their part (a fraction of a second) and are reused
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return Buffer.concat(await Promise.race([hashed, aborted]));
  } finally {
    signal.removeEventListener('abort', onAbort!);
    hashed.catch(() => undefined);
  }
}
