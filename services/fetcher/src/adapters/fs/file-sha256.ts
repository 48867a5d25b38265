// Hashes large downloads on a worker thread, reading back what was just written to the
// cache file: SHA-256 (~0.9 s of CPU per GiB here) was the largest item on the fetcher's
// event loop, which also parses the download and feeds ReadBlob. Reading the page cache
// costs the worker a copy; the event loop hands over nothing but file offsets.
import { Worker } from 'node:worker_threads';
import { InternalError } from '../../domain/errors.ts';

// Plain CommonJS so the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { readSync } = require('node:fs');
const buffer = Buffer.allocUnsafeSlow(1024 * 1024);
const files = new Map();
parentPort.on('message', (m) => {
  let file = files.get(m.id);
  if (m.kind === 'extend') {
    if (!file) files.set(m.id, (file = { hash: createHash('sha256'), at: 0, error: undefined }));
    if (file.error) return;
    try {
      while (file.at < m.end) {
        const n = readSync(m.fd, buffer, 0, Math.min(buffer.length, m.end - file.at), file.at);
        if (n === 0) throw new Error('the file ends at byte ' + file.at + ', before ' + m.end);
        file.hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
        file.at += n;
      }
    } catch (e) {
      file.error = e.message;
    }
  } else {
    files.delete(m.id);
    if (m.kind === 'digest' && file && !file.error) {
      parentPort.postMessage({ id: m.id, hex: file.hash.digest('hex'), bytes: file.at });
    } else {
      parentPort.postMessage({ id: m.id, error: file ? file.error : undefined });
    }
  }
});
`;

type Reply = { id: number; hex: string; bytes: number } | { id: number; error: string | undefined };

/** SHA-256 of a file being written, fed by offsets as its bytes land on disk. */
export interface RunningFileSha256 {
  /** Bytes [0, end) are on disk: hash them (in order; never blocks the caller). */
  extend(end: number): void;
  /** The digest of everything extended so far; the worker is done with the descriptor after this. */
  digest(): Promise<{ hex: string; bytes: number }>;
  /** Drops the hash; resolves once the worker no longer reads the descriptor (close it after). */
  discard(): Promise<void>;
}

export class FileSha256 {
  private worker: Worker | undefined;
  private nextId = 0;
  private running = 0;
  private readonly waiting = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();

  /** `fd` must stay open until digest() or discard() settles. */
  start(fd: number): RunningFileSha256 {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    // Referenced while any hash runs, so awaiting its digest keeps the process alive.
    if (this.running++ === 0) worker.ref();
    let ended = false;
    const release = () => {
      if (ended) return;
      ended = true;
      if (this.worker === worker && --this.running === 0) worker.unref();
    };
    const ask = (kind: 'digest' | 'discard') =>
      new Promise<Reply>((resolve, reject) => {
        if (this.worker !== worker) {
          return reject(new InternalError("the fetcher's sha256 worker thread stopped while hashing a download"));
        }
        this.waiting.set(id, { resolve, reject });
        worker.postMessage({ kind, id });
      });
    return {
      extend: (end) => worker.postMessage({ kind: 'extend', id, fd, end }),
      digest: async () => {
        const reply = await ask('digest').finally(release);
        if ('hex' in reply) return reply;
        throw new InternalError(`hashing the downloaded file failed: ${reply.error ?? 'nothing was hashed'}`);
      },
      discard: async () => {
        await ask('discard')
          .catch(() => {})
          .finally(release);
      },
    };
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'kindling-fetcher-sha256' });
    worker.on('message', (reply: Reply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      waiter?.resolve(reply);
    });
    const fail = (error: Error) => {
      if (this.worker === worker) {
        this.worker = undefined;
        this.running = 0;
      }
      for (const [id, waiter] of this.waiting) {
        this.waiting.delete(id);
        waiter.reject(
          new InternalError(`the fetcher's sha256 worker thread failed: ${error.message}`, { cause: error }),
        );
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
    worker.unref(); // never keeps the process alive by itself (after the listeners: they ref it again)
    this.worker = worker;
    return worker;
  }
}
