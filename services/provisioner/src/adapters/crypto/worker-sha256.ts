// Hashes large blobs on a worker thread, so PutFiles' sha256 check (~1.5 ms of CPU per MiB) runs
// beside the SSH encryption on another core instead of on the event loop that feeds SFTP.
import { InternalError } from '../../domain/errors.ts';
import { inlineSha256 } from '../../domain/byte-streams.ts';
import type { RunningSha256, Sha256Hashing } from '../../ports/sha256-hashing.ts';
import { WorkerChannel } from '../worker-channel.ts';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (message) => {
  const { kind, id } = message;
  if (kind === 'update') {
    let hash = hashes.get(id);
    if (!hash) hashes.set(id, (hash = createHash('sha256')));
    hash.update(message.data);
    parentPort.postMessage({ kind: 'hashed', id, bytes: message.data.byteLength });
  } else if (kind === 'digest') {
    const hash = hashes.get(id) ?? createHash('sha256');
    hashes.delete(id);
    parentPort.postMessage({ kind: 'digest', id, hex: hash.digest('hex') });
  } else if (kind === 'discard') hashes.delete(id);
});
`;

/** Below this a worker round trip costs more than hashing inline. */
const DEFAULT_MIN_WORKER_SIZE = 1024 * 1024;
/** Bytes handed to the worker and not hashed yet, per hash, before the producer is asked to wait. */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;

type WorkerReply = { kind: 'hashed'; id: number; bytes: number } | { kind: 'digest'; id: number; hex: string };

interface PendingHash {
  queued: number;
  failure?: Error;
  resumeProducer?: () => void;
  digest?: { resolve(hex: string): void; reject(error: Error): void };
}

export class WorkerSha256Hashing implements Sha256Hashing {
  private nextId = 0;
  private readonly pending = new Map<number, PendingHash>();
  private readonly channel = new WorkerChannel<WorkerReply>({
    source: WORKER_SOURCE,
    name: 'kindling-sha256',
    onReply: (reply) => this.onReply(reply),
    onFailure: (error) => this.failPending(error),
  });

  constructor(private readonly minWorkerSize = DEFAULT_MIN_WORKER_SIZE) {}

  start(expectedSize: number): RunningSha256 {
    if (expectedSize < this.minWorkerSize) return inlineSha256();
    const worker = this.channel.current();
    const id = this.nextId++;
    const state: PendingHash = { queued: 0 };
    this.pending.set(id, state);
    return {
      update: (chunk) => {
        if (state.failure) throw state.failure;
        // a copy of exactly these bytes, moved (not cloned again) to the worker; the caller keeps chunk
        const copy = new Uint8Array(chunk);
        worker.postMessage({ kind: 'update', id, data: copy }, [copy.buffer]);
        state.queued += copy.byteLength;
        if (state.queued <= MAX_QUEUED_BYTES) return undefined;
        return new Promise<void>((resolve) => (state.resumeProducer = resolve));
      },
      hexDigest: () =>
        new Promise<string>((resolve, reject) => {
          if (state.failure) return reject(state.failure);
          if (!this.pending.has(id)) return reject(new InternalError(`a blob's sha256 was read after it was discarded`));
          state.digest = { resolve, reject };
          worker.postMessage({ kind: 'digest', id });
        }),
      discard: () => {
        if (!this.pending.delete(id)) return;
        state.resumeProducer?.();
        worker.postMessage({ kind: 'discard', id });
      },
    };
  }

  close(): Promise<void> {
    return this.channel.close();
  }

  private failPending(error: Error): void {
    for (const [id, state] of this.pending) {
      this.pending.delete(id);
      state.failure = new InternalError(`the sha256 worker thread failed while checking a blob: ${error.message}`, { cause: error });
      state.resumeProducer?.();
      state.digest?.reject(state.failure);
    }
  }

  private onReply(reply: WorkerReply): void {
    const state = this.pending.get(reply.id);
    if (!state) return;
    if (reply.kind === 'hashed') {
      state.queued -= reply.bytes;
      if (state.queued <= MAX_QUEUED_BYTES / 2 && state.resumeProducer) {
        const resume = state.resumeProducer;
        state.resumeProducer = undefined;
        resume();
      }
    } else {
      this.pending.delete(reply.id);
      state.digest?.resolve(reply.hex);
    }
  }
}
