import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { InvalidArgumentError } from '../../domain/errors.ts';

export type Compression = 'none' | 'gzip' | 'zstd';

/** Detects the archive's compression from its first bytes (names lie; magic numbers don't). */
export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** The archive's bytes decompressed as they stream: zlib for gzip, the zstd binary for zstd. */
export async function* decompressed(
  source: AsyncIterable<Uint8Array>,
  shown: string,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) throw new InvalidArgumentError(`${shown} is empty, not a tar archive`);
  const head = first.value;
  async function* whole(): AsyncGenerator<Uint8Array> {
    yield head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  const kind = detectCompression(head);
  if (kind === 'none') {
    for await (const c of whole()) yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    return;
  }
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    const feeding = pipeline(Readable.from(whole()), gunzip, { end: true }).catch((err: unknown) => {
      gunzip.destroy(err as Error);
    });
    try {
      for await (const c of gunzip) yield c as Buffer;
    } catch (err) {
      throw new InvalidArgumentError(`${shown} is not a valid gzip stream: ${(err as Error).message}`);
    }
    await feeding;
    return;
  }
  const zstd = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
  let stderr = '';
  zstd.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  zstd.on('error', () => {});
  const exited = new Promise<number | null>((resolve) => zstd.on('close', resolve));
  const feeding = pipeline(Readable.from(whole()), zstd.stdin).catch(() => zstd.kill('SIGKILL'));
  let drained = false;
  try {
    for await (const c of zstd.stdout) yield c as Buffer;
    drained = true;
  } finally {
    if (!drained) zstd.kill('SIGKILL');
  }
  await feeding;
  const code = await exited;
  if (code !== 0) throw new InvalidArgumentError(`${shown} is not a valid zstd stream: ${stderr.trim()}`);
}
