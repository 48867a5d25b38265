import { createHash } from 'node:crypto';
import { InternalError } from './errors.ts';

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

/** Passes bytes through while hashing them; verify() checks sha256 and size at the end. */
export class DigestCheckedStream implements AsyncIterable<Buffer> {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  constructor(
    private readonly source: AsyncIterable<Buffer>,
    private readonly digest: string,
    private readonly what: string,
  ) {}

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for await (const chunk of this.source) {
      this.hash.update(chunk);
      this.bytes += chunk.length;
      yield chunk;
    }
  }

  verify(expectedSize?: number): void {
    const actual = `sha256:${this.hash.digest('hex')}`;
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
