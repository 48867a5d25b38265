// Reads a file on a worker thread and hashes each chunk there before moving (not copying) it to
// the event loop: the sha256 check and the read syscalls cost the thread that feeds SFTP nothing,
// and the digest is of exactly the bytes handed over.
import type { FileHandle } from 'node:fs/promises';
import { WorkerChannel } from '../worker-channel.ts';

// Chunks go out only against credits (the consumer's read-ahead window); reads share the
// process's descriptor, by number.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const CHUNK = ${1024 * 1024};
const reads = new Map();
function pump(id) {
  const read = reads.get(id);
  while (read && read.credits > 0) {
    const buffer = Buffer.allocUnsafeSlow(CHUNK);
    let length;
    try {
      length = readSync(read.fd, buffer, 0, CHUNK, read.position);
    } catch (error) {
      reads.delete(id);
      return parentPort.postMessage({ kind: 'error', id, message: error.message });
    }
    if (length === 0) {
      reads.delete(id);
      return parentPort.postMessage({ kind: 'end', id, hex: read.hash.digest('hex') });
    }
    const data = new Uint8Array(buffer.buffer, 0, length);
    read.hash.update(data);
    read.position += length;
    read.credits--;
    parentPort.postMessage({ kind: 'chunk', id, data }, [buffer.buffer]);
  }
}
parentPort.on('message', (message) => {
  const { kind, id } = message;
  if (kind === 'read') {
    reads.set(id, { fd: message.fd, position: 0, credits: message.credits, hash: createHash('sha256') });
    pump(id);
  } else if (kind === 'credit') {
    const read = reads.get(id);
    if (read) read.credits++;
    pump(id);
  } else if (kind === 'cancel') {
    reads.delete(id);
    parentPort.postMessage({ kind: 'cancelled', id });
  }
});
`;

/** Chunks read ahead of the consumer: enough to keep SFTP's pipeline full while the worker waits for CPU. */
const READ_AHEAD_CHUNKS = 8;

type WorkerReply =
  | { kind: 'chunk'; id: number; data: Uint8Array }
  | { kind: 'end'; id: number; hex: string }
  | { kind: 'error'; id: number; message: string }
  | { kind: 'cancelled'; id: number };

interface ActiveRead {
  onReply(reply: WorkerReply): void;
  onWorkerFailure(error: Error): void;
}

export interface HashedFileRead {
  chunks: AsyncIterable<Buffer>;
  /** sha256 (hex) of every byte of the file, available once `chunks` has ended. */
  sha256: Promise<string>;
}

export class HashingFileReader {
  private nextId = 0;
  private readonly active = new Map<number, ActiveRead>();
  private readonly channel = new WorkerChannel<WorkerReply>({
    source: WORKER_SOURCE,
    name: 'kindling-blob-reader',
    onReply: (reply) => this.active.get(reply.id)?.onReply(reply),
    onFailure: (error) => {
      for (const read of [...this.active.values()]) read.onWorkerFailure(new Error(`the blob reader thread failed: ${error.message}`, { cause: error }));
    },
  });

  /** Streams the whole file behind `handle`; the handle stays the caller's to close, once `chunks` is done. */
  read(handle: FileHandle, label: string): HashedFileRead {
    const worker = this.channel.current();
    const id = this.nextId++;
    const queue: Buffer[] = [];
    let finished: { hex: string } | { error: Error } | undefined;
    let wake: (() => void) | undefined;
    let resolveSha!: (hex: string) => void;
    let rejectSha!: (error: Error) => void;
    const sha256 = new Promise<string>((resolve, reject) => ((resolveSha = resolve), (rejectSha = reject)));
    sha256.catch(() => {}); // observed by whoever verifies; an abandoned read never is
    let cancelled: Promise<void> | undefined;
    let resolveCancelled: (() => void) | undefined;
    const settle = (outcome: { hex: string } | { error: Error }): void => {
      finished ??= outcome;
      this.active.delete(id);
      resolveCancelled?.();
      if ('hex' in outcome) resolveSha(outcome.hex);
      else rejectSha(outcome.error);
      wake?.();
    };
    this.active.set(id, {
      onReply: (reply) => {
        if (reply.kind === 'chunk') {
          queue.push(Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength));
          wake?.();
        } else if (reply.kind === 'end') settle({ hex: reply.hex });
        else if (reply.kind === 'error') settle({ error: new Error(`reading ${label} failed: ${reply.message}`) });
        else settle({ error: new Error(`reading ${label} was abandoned`) });
      },
      onWorkerFailure: (error) => settle({ error }),
    });
    worker.postMessage({ kind: 'read', id, fd: handle.fd, credits: READ_AHEAD_CHUNKS });
    const active = this.active;
    async function* chunks(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          const chunk = queue.shift();
          if (chunk) {
            worker.postMessage({ kind: 'credit', id });
            yield chunk;
            continue;
          }
          if (finished) {
            if ('error' in finished) throw finished.error;
            return;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        if (!finished && active.has(id)) {
          // the worker must stop using the descriptor before the caller closes it
          cancelled = new Promise<void>((resolve) => (resolveCancelled = resolve));
          worker.postMessage({ kind: 'cancel', id });
          await cancelled;
        }
      }
    }
    return { chunks: chunks(), sha256 };
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}
