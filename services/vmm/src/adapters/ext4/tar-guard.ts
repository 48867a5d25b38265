/**
 * Reads tar headers as the archive streams past, before GNU tar extracts it as root: an entry whose
 * name or hard-link target climbs out of the root ("..") is refused, and an archive cut off before its
 * end-of-archive block (an upload that stopped short) is refused rather than taken as complete.
 * Symlink targets are the guest's business; GNU tar keeps absolute or ".." ones as placeholders until
 * the end, so none is followed on the host while extracting. Counts entries (inodes to allocate).
 */
import { InvalidArgumentError } from '../../domain/errors.ts';

const BLOCK = 512;

export class TarGuard {
  /** Entries seen so far (each one inode, at most). */
  entries = 0;
  private pending = Buffer.alloc(0);
  /** Bytes of entry data (padded) still to skip before the next header. */
  private skip = 0;
  private ended = false;
  // GNU long names and PAX records apply to the header that follows them
  private longName: string | undefined;
  private longLink: string | undefined;
  private paxPath: string | undefined;
  private paxLinkPath: string | undefined;
  private paxSize: number | undefined;
  private collecting: { kind: 'L' | 'K' | 'x' | 'g'; size: number; chunks: Buffer[]; got: number } | undefined;

  /** Checks one piece of the archive; throws InvalidArgumentError at the first bad entry. */
  feed(chunk: Uint8Array): void {
    let data = Buffer.concat([this.pending, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)]);
    while (data.length > 0 && !this.ended) {
      if (this.skip > 0) {
        const taken = Math.min(this.skip, data.length);
        if (this.collecting) this.collect(data.subarray(0, taken));
        this.skip -= taken;
        data = data.subarray(taken);
        if (this.skip === 0 && this.collecting) this.finishCollecting();
        continue;
      }
      if (data.length < BLOCK) break;
      this.header(data.subarray(0, BLOCK));
      data = data.subarray(BLOCK);
    }
    this.pending = this.ended ? Buffer.alloc(0) : Buffer.from(data);
  }

  /** The archive is complete: it reached its end-of-archive block. */
  finish(): void {
    if (!this.ended) {
      throw new InvalidArgumentError(
        'the archive ended without its end-of-archive blocks: the upload was cut short, or it is not a tar archive',
      );
    }
  }

  private header(block: Buffer): void {
    if (block.every((byte) => byte === 0)) {
      this.ended = true;
      return;
    }
    if (!checksumMatches(block)) throw new InvalidArgumentError(`archive entry ${this.entries + 1}: not a tar header (bad checksum)`);
    const type = String.fromCharCode(block[156] ?? 0);
    const size = this.paxSize ?? octal(block.subarray(124, 136));
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      this.collecting = { kind: type, size, chunks: [], got: 0 };
      this.skip = padded;
      if (padded === 0) this.finishCollecting();
      return;
    }
    const prefix = text(block.subarray(345, 500));
    const name = this.paxPath ?? this.longName ?? (prefix ? `${prefix}/${text(block.subarray(0, 100))}` : text(block.subarray(0, 100)));
    refuseEscape(name, `archive entry "${name}"`);
    if (type === '1') {
      const target = this.paxLinkPath ?? this.longLink ?? text(block.subarray(157, 257));
      refuseEscape(target, `hard link "${name}" to "${target}"`);
    }
    this.entries++;
    this.longName = this.longLink = this.paxPath = this.paxLinkPath = this.paxSize = undefined;
    this.skip = padded;
  }

  private collect(piece: Buffer): void {
    const collecting = this.collecting!;
    collecting.chunks.push(Buffer.from(piece));
    collecting.got += piece.length;
  }

  private finishCollecting(): void {
    const { kind, size, chunks } = this.collecting!;
    this.collecting = undefined;
    const body = Buffer.concat(chunks).subarray(0, size);
    if (kind === 'L') this.longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if (kind === 'K') this.longLink = body.toString('utf8').replace(/\0.*$/s, '');
    else if (kind === 'x') {
      const records = paxRecords(body);
      this.paxPath = records.get('path');
      this.paxLinkPath = records.get('linkpath');
      const paxSize = records.get('size');
      this.paxSize = paxSize === undefined ? undefined : Number(paxSize);
    }
    // 'g' (global) records carry no name we need
  }
}

function refuseEscape(name: string, what: string): void {
  let depth = 0;
  for (const part of name.split('/')) {
    if (part === '..') depth--;
    else if (part && part !== '.') depth++;
    if (depth < 0) throw new InvalidArgumentError(`${what} climbs out of the archive's root: refused`);
  }
}

/** A numeric header field: NUL/space-ended octal, or GNU's base-256 (high bit set) for large values. */
function octal(field: Buffer): number {
  if ((field[0] ?? 0) & 0x80) {
    let value = (field[0] ?? 0) & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const digits = field.toString('latin1').replace(/[\0 ].*$/s, '').trim();
  return digits ? parseInt(digits, 8) : 0;
}

function checksumMatches(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === octal(block.subarray(148, 156));
}

const text = (field: Buffer): string => field.toString('utf8').replace(/\0.*$/s, '');

/** PAX extended header: records of "<length> <key>=<value>\n". */
function paxRecords(body: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(body.subarray(offset, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = body.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    offset += length;
  }
  return records;
}
