import type { BlobStore } from '../ports/blob-store.ts';
import type { HttpSource } from '../ports/http-source.ts';
import type { GrowingFile, GrowingFileReader } from '../ports/growing-file.ts';
import type { Digest } from './digest.ts';
import { CancelledError, DomainError, InvalidArgumentError, ResourceExhaustedError } from './errors.ts';
import { redactUrl } from './network-policy.ts';

export interface RemoteFile {
  digest: Digest;
  size: number;
  lastModified: Date | undefined;
  finalUrl: URL;
}

interface ChunkQueue {
  chunks: Buffer[];
  bytes: number;
  overflowed: boolean;
}

/**
 * Bytes a following reader may be behind before it reads from the file instead of memory. Small:
 * chunks held across two scavenges are promoted to V8's old space, and their backing stores then
 * add up to a major GC every few dozen MiB (half the fetcher's CPU on a lagging reader at 16 MiB).
 */
const MEMORY_QUEUE_LIMIT = 4 * 1024 * 1024;

/** A download in flight, which readers can follow while its bytes land on disk. */
export class Download {
  tmpPath: string | undefined;
  written = 0;
  contentLength: number | undefined;
  outcome: { file: RemoteFile } | { error: unknown } | undefined;
  result!: Promise<RemoteFile>;
  private waiters: (() => void)[] = [];
  private readonly subscribers = new Set<ChunkQueue>();

  /** Hands each chunk, once on disk, to readers that follow from memory. */
  delivered(chunk: Uint8Array): void {
    for (const q of this.subscribers) {
      if (q.overflowed) continue;
      if (q.bytes >= MEMORY_QUEUE_LIMIT) {
        // A slow reader: drop its queue, it continues from the file.
        q.overflowed = true;
        q.chunks = [];
        this.subscribers.delete(q);
        continue;
      }
      q.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      q.bytes += chunk.byteLength;
    }
  }

  /** A queue that sees every chunk from the first byte on, or undefined when bytes already went by. */
  subscribe(): ChunkQueue | undefined {
    if (this.written > 0 || this.outcome) return undefined;
    const q: ChunkQueue = { chunks: [], bytes: 0, overflowed: false };
    this.subscribers.add(q);
    return q;
  }

  unsubscribe(q: ChunkQueue): void {
    this.subscribers.delete(q);
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

export interface StreamedFile {
  /** Announced size, when the server sent Content-Length. */
  contentLength: number | undefined;
  chunks: AsyncIterable<Buffer>;
  /** Settles when the download is stored: the verified digest. */
  done: Promise<RemoteFile>;
}

/**
 * Downloads URLs into the blob store, once per URL however many callers ask at
 * the same time, refusing directory URLs (HTTP cannot list a directory).
 * Callers may also follow a download as it arrives (stream).
 */
export class RemoteFiles {
  private readonly inFlight = new Map<string, Download>();

  constructor(
    private readonly http: HttpSource,
    private readonly blobs: BlobStore,
    private readonly files: GrowingFileReader,
    private readonly limits: { maxFileSize: number; fetchTimeoutMs: number },
  ) {}

  fetch(
    url: URL,
    options: {
      expectedDigest?: Digest | undefined;
      signal?: AbortSignal | undefined;
      shownAs?: string | undefined;
    },
  ): Promise<RemoteFile> {
    return abortable(this.start(url, options.expectedDigest, options.shownAs).result, options.signal);
  }

  /** Follows a download from the first byte, starting it unless it is already in flight. */
  async stream(
    url: URL,
    options: { signal?: AbortSignal | undefined; shownAs?: string | undefined },
  ): Promise<StreamedFile> {
    const download = this.start(url, undefined, options.shownAs);
    // Subscribed before any byte lands, so this reader can be served from memory.
    const queue = download.subscribe();
    try {
      while (download.tmpPath === undefined && download.outcome === undefined) {
        await download.changed(options.signal);
      }
      if (download.outcome && 'error' in download.outcome) throw download.outcome.error;
    } catch (err) {
      if (queue) download.unsubscribe(queue);
      throw err;
    }
    return {
      contentLength:
        download.contentLength ?? (download.outcome as { file: RemoteFile } | undefined)?.file.size,
      chunks: this.follow(download, queue, options.signal),
      done: download.result,
    };
  }

  private start(url: URL, expectedDigest: Digest | undefined, shownAs: string | undefined): Download {
    const key = `${url.href}\n${expectedDigest ?? ''}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    const download = new Download();
    // The shared download has its own deadline: one caller giving up must not fail the others.
    download.result = (async () => {
      const signal = AbortSignal.timeout(this.limits.fetchTimeoutMs);
      const shown = shownAs ?? redactUrl(url);
      if (url.pathname.endsWith('/')) throw directoryError(shown);
      const res = await this.http.get(url, signal);
      // A server that redirects "dir" to "dir/" is telling us it is a directory.
      if (res.finalUrl.pathname.endsWith('/')) {
        res.discard();
        throw directoryError(shown);
      }
      if (res.contentLength !== undefined && res.contentLength > this.limits.maxFileSize) {
        res.discard();
        throw new ResourceExhaustedError(
          `${shown} is ${res.contentLength} bytes (Content-Length), over the file size limit of ${this.limits.maxFileSize}; raise --max-file-size or shrink the file`,
        );
      }
      download.contentLength = res.contentLength;
      const blob = await this.blobs.ingest(res.body, {
        maxSize: this.limits.maxFileSize,
        expectedDigest,
        signal,
        label: `GET ${redactUrl(res.finalUrl)}`,
        onProgress: ({ tmpPath, written, chunk }) => {
          download.tmpPath = tmpPath;
          download.written = written;
          if (chunk) download.delivered(chunk);
          download.notify();
        },
      });
      return { ...blob, lastModified: res.lastModified, finalUrl: res.finalUrl };
    })().then(
      (file) => {
        download.outcome = { file };
        return file;
      },
      (error: unknown) => {
        download.outcome = { error };
        throw error;
      },
    );
    download.result
      .catch(() => {})
      .finally(() => {
        this.inFlight.delete(key);
        download.notify();
      });
    this.inFlight.set(key, download);
    return download;
  }

  /** Bytes of a download in order: from its temporary file while it grows, from the blob store once stored. */
  /** From memory while the reader keeps up (no re-read of what was just written), from the file when behind. */
  private async *follow(
    download: Download,
    queue: ChunkQueue | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Buffer> {
    let offset = 0;
    let file: GrowingFile | undefined;
    try {
      for (;;) {
        signal?.throwIfAborted();
        if (download.outcome && 'error' in download.outcome) throw download.outcome.error;
        if (queue && !queue.overflowed) {
          const chunk = queue.chunks.shift();
          if (chunk) {
            queue.bytes -= chunk.length;
            offset += chunk.length;
            yield chunk;
            continue;
          }
          if (download.outcome) return;
          await download.changed(signal);
          continue;
        }
        if (download.outcome && file === undefined) {
          // Stored before we started reading: the blob store has it all.
          const blob = await this.blobs.read(download.outcome.file.digest, { offset, signal });
          yield* blob.chunks;
          return;
        }
        if (offset < download.written) {
          if (!file) {
            try {
              file = await this.files.open(download.tmpPath!);
            } catch (err) {
              // Renamed into the store between our check and the open: read it from there.
              if (!download.outcome || !('file' in download.outcome)) throw err;
              yield* (await this.blobs.read(download.outcome.file.digest, { offset, signal })).chunks;
              return;
            }
          }
          const chunk = await file.read(offset, download.written);
          if (chunk.length === 0)
            throw new Error(`download file ${download.tmpPath} ended before ${download.written} bytes`);
          offset += chunk.length;
          yield chunk;
          continue;
        }
        if (download.outcome) return;
        await download.changed(signal);
      }
    } finally {
      if (queue) download.unsubscribe(queue);
      await file?.close();
    }
  }
}

function directoryError(shown: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `source ${shown} is a directory; a directory cannot be fetched over HTTP (there is no listing), so name each file, or use a git or tarball context`,
  );
}

/** Stops waiting for a shared promise when this caller's signal fires. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(cancelled(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function cancelled(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof DomainError
    ? reason
    : new CancelledError('the request was cancelled by the client');
}
