/**
 * What `kindling build -` reads on stdin, told by content as docker does: a tar, gzip or zstd stream is
 * a whole build context, anything else is a Dockerfile without context.
 */

export type ContextArchiveFormat = 'tar' | 'gzip' | 'zstd';

export type StdinContext =
  | { kind: 'dockerfile'; text: string }
  /** chunks replays the bytes read to detect the format, then the rest of stdin as it arrives. */
  | { kind: 'archive'; format: ContextArchiveFormat; fileName: string; chunks: AsyncIterable<Buffer> };

// A tar header's "ustar" magic sits at offset 257; every other magic is within the first 6 bytes.
const SNIFF_BYTES = 262;

// The fetcher detects an upload's format by its file name.
const FILE_NAMES: Record<ContextArchiveFormat, string> = { tar: 'stdin.tar', gzip: 'stdin.tar.gz', zstd: 'stdin.tar.zst' };

// Buffer.from(buffer) would copy every chunk of a large archive.
const asBuffer = (chunk: Buffer | string): Buffer => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk);

function startsWith(head: Buffer, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((byte, i) => head[i] === byte);
}

/** The archive format stdin's first bytes announce, or undefined for anything else (a Dockerfile). */
export function archiveFormatOf(head: Buffer): ContextArchiveFormat | 'bzip2' | 'xz' | undefined {
  if (startsWith(head, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (startsWith(head, [0x42, 0x5a, 0x68])) return 'bzip2';
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (head.length >= SNIFF_BYTES && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  return undefined;
}

/**
 * Reads just enough of stdin to tell an archive from a Dockerfile. An archive is not buffered: its
 * chunks stream on from stdin, so a large context is never held in memory.
 */
export async function readStdinContext(input: AsyncIterable<Buffer | string>): Promise<StdinContext> {
  const iterator = input[Symbol.asyncIterator]();
  const read: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < SNIFF_BYTES) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    const chunk = asBuffer(next.value);
    read.push(chunk);
    size += chunk.length;
  }
  const head = read.length === 1 ? read[0]! : Buffer.concat(read);
  const format = archiveFormatOf(head);
  if (format === 'bzip2' || format === 'xz') {
    throw new Error(
      `stdin holds a ${format}-compressed archive; a context on stdin must be a .tar, .tar.gz or .tar.zst stream: ` +
        `decompress it on the way (${format === 'xz' ? 'xz' : 'bzip2'} -dc ctx.tar.${format === 'xz' ? 'xz' : 'bz2'} | kindling build ... -)`,
    );
  }
  if (format === undefined) {
    const parts = [head];
    for (let next = ended ? undefined : await iterator.next(); next && !next.done; next = await iterator.next()) parts.push(asBuffer(next.value));
    return { kind: 'dockerfile', text: Buffer.concat(parts).toString('utf8') };
  }
  async function* chunks(): AsyncGenerator<Buffer> {
    yield head;
    if (ended) return;
    try {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield asBuffer(next.value);
    } finally {
      await iterator.return?.();
    }
  }
  return { kind: 'archive', format, fileName: FILE_NAMES[format], chunks: chunks() };
}
