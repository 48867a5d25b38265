// ADD extracts a local file when it is a tar archive, plain or compressed, recognised by
// content like Docker does (not by file name).
export type CompressionFormat = 'none' | 'gzip' | 'bzip2' | 'xz';

export function detectCompression(head: Buffer): CompressionFormat {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** A tar stream starts with a 512-byte header whose checksum matches (ustar, gnu or v7). */
export function looksLikeTar(head: Buffer): boolean {
  if (head.length < 512) return false;
  const stored = parseInt(head.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (head[i] as number);
  return sum === stored;
}
