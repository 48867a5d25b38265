import { createHash } from 'node:crypto';
import { isSelfHashed } from '../ports/blob-source.ts';
import type { RunningSha256, Sha256Hashing } from '../ports/sha256-hashing.ts';
import { InternalError } from './errors.ts';

/** sha256 on the calling thread: the default, and what a worker adapter uses for small blobs. */
export function inlineSha256(): RunningSha256 {
  const hash = createHash('sha256');
  return {
    update: (chunk) => void hash.update(chunk),
    hexDigest: async () => hash.digest('hex'),
    discard: () => {},
  };
}

const noSha256: RunningSha256 = {
  update: () => {},
  hexDigest: () => Promise.reject(new InternalError('no sha256 was computed here: the blob source hashes its own bytes')),
  discard: () => {},
};

export const inlineSha256Hashing: Sha256Hashing = { start: () => inlineSha256() };

/** Reads at least `size` bytes ahead (if the stream has them) without losing them. */
export async function peek(source: AsyncIterable<Buffer>, size: number): Promise<{ head: Buffer; stream: AsyncIterable<Buffer> }> {
  const iterator = source[Symbol.asyncIterator]();
  const buffered: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < size) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    buffered.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(buffered);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, stream: replay() };
}

/**
 * Passes bytes through while hashing them; verify() checks sha256 and size at the end, and
 * must pass before the bytes are used (renamed into place, extracted). Iterate it once.
 */
export class DigestCheckedStream implements AsyncIterable<Buffer> {
  private bytes = 0;
  private iteration: AsyncGenerator<Buffer> | undefined;

  constructor(
    private readonly source: AsyncIterable<Buffer>,
    private readonly digest: string,
    private readonly what: string,
    /** Unused (may be omitted) when the source hashes what it yields itself. */
    private readonly hash: RunningSha256 = isSelfHashed(source) ? noSha256 : inlineSha256(),
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    this.iteration = this.passThrough();
    return this.iteration;
  }

  private async *passThrough(): AsyncGenerator<Buffer> {
    let complete = false;
    try {
      for await (const chunk of this.source) {
        const backpressure = this.hash.update(chunk);
        this.bytes += chunk.length;
        yield chunk;
        // waited for only when the next chunk is asked for, so hashing overlaps the consumer's write
        if (backpressure) await backpressure;
      }
      complete = true;
    } finally {
      if (!complete) this.hash.discard();
    }
  }

  /** The bytes will not be verified (the copy failed): forgets the hash and lets go of the source (an open blob file, a ReadBlob call). */
  discard(): void {
    this.hash.discard();
    void this.iteration?.return(undefined).catch(() => {});
  }

  async verify(expectedSize?: number): Promise<void> {
    const actual = `sha256:${await (isSelfHashed(this.source) ? this.source.yieldedSha256() : this.hash.hexDigest())}`;
    if (actual !== this.digest || (expectedSize !== undefined && expectedSize !== this.bytes)) {
      throw new InternalError(
        `blob for ${this.what} did not match: expected ${this.digest}${expectedSize !== undefined ? ` (${expectedSize} bytes)` : ''}, received ${actual} (${this.bytes} bytes); the fetcher's blob store may be corrupt`,
      );
    }
  }
}

export async function drain(source: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of source) {
    // read to the end so a wrapped digest check sees every byte
  }
}
