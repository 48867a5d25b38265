import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { runCommand } from './run-command.ts';

/** Compressors the x86 kernel build can use for its payload, by magic bytes, with the tool that inflates them. */
const COMPRESSORS: { name: string; magic: number[]; tool: string; args: string[] }[] = [
  { name: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18], tool: 'lz4', args: ['-dc'] },
  { name: 'gzip', magic: [0x1f, 0x8b], tool: 'gzip', args: ['-dc'] },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], tool: 'xz', args: ['-dc'] },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], tool: 'zstd', args: ['-dc'] },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], tool: 'bzip2', args: ['-dc'] },
  { name: 'lzma', magic: [0x5d, 0x00, 0x00], tool: 'xz', args: ['--format=lzma', '-dc'] },
];

export interface BzImagePayload {
  readonly compression: string;
  readonly offset: number;
  readonly length: number;
}

/** Locates the compressed vmlinux inside a bzImage (boot protocol ≥ 2.08: payload_offset/payload_length at 0x248). */
export function locatePayload(bzImage: Buffer, source = 'bzImage'): BzImagePayload {
  if (bzImage.length < 0x250 || bzImage.toString('latin1', 0x202, 0x206) !== 'HdrS')
    throw new Error(`${source} is not an x86 bzImage (no "HdrS" boot header at 0x202)`);
  const protocol = bzImage.readUInt16LE(0x206);
  if (protocol < 0x208)
    throw new Error(
      `${source} uses boot protocol ${protocol.toString(16)}; 2.08+ is needed to find its payload`,
    );
  const setupSects = bzImage.readUInt8(0x1f1) || 4;
  const offset = (setupSects + 1) * 512 + bzImage.readUInt32LE(0x248);
  const length = bzImage.readUInt32LE(0x24c);
  if (offset + length > bzImage.length)
    throw new Error(
      `${source}: payload ${offset}+${length} runs past the end of the file (${bzImage.length} bytes)`,
    );
  const head = bzImage.subarray(offset, offset + 8);
  const found = COMPRESSORS.find((c) => c.magic.every((b, i) => head[i] === b));
  if (!found)
    throw new Error(
      `${source}: payload at ${offset} has unknown compression (magic ${head.toString('hex')})`,
    );
  return { compression: found.name, offset, length };
}

/**
 * Writes the uncompressed ELF vmlinux (what Firecracker boots on x86_64) from a bzImage.
 * The kernel build appends the decompressed size to some payloads, which the tools may call
 * trailing garbage: the result is judged by its ELF header, not the tool's exit code.
 */
export async function extractVmlinux(bzImagePath: string, outPath: string): Promise<BzImagePayload> {
  const image = await readFile(bzImagePath);
  const payload = locatePayload(image, bzImagePath);
  const compressor = COMPRESSORS.find((c) => c.name === payload.compression);
  if (!compressor) throw new Error(`no decompressor for ${payload.compression}`);
  const tmp = `${outPath}.tmp-${process.pid}`;
  try {
    let output: Buffer;
    try {
      output = (
        await runCommand(compressor.tool, compressor.args, {
          input: image.subarray(payload.offset, payload.offset + payload.length),
          allowFailure: true,
        })
      ).stdout;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new Error(
          `${bzImagePath} payload is ${payload.compression}: install ${compressor.tool} to extract vmlinux`,
        );
      throw e;
    }
    if (!isElf(output))
      throw new Error(`${bzImagePath}: decompressed ${payload.compression} payload is not an ELF image`);
    await writeFile(tmp, output);
    await rename(tmp, outPath);
  } finally {
    await rm(tmp, { force: true });
  }
  return payload;
}

export const isElf = (head: Buffer): boolean =>
  head.length >= 4 && head[0] === 0x7f && head.toString('latin1', 1, 4) === 'ELF';

/** Reads the first bytes of a file to tell whether it is an ELF binary. */
export async function fileIsElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, 0);
    return isElf(buf);
  } finally {
    await fh.close();
  }
}
