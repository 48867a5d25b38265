/**
 * A VM's transfer disk: a sparse file attached read-only as the guest's second virtio-blk disk,
 * which the host fills with WriteVmTransfer. The guest reads large COPY files from it with
 * O_DIRECT (so never a stale page) instead of receiving them through its sshd, which under
 * emulation moves a third of what the disk path does (docs/dockerfile.md, "The transfer disk").
 */
import { createHash } from 'node:crypto';
import { open, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from './errors.ts';
import type { VmRecord } from './vm.ts';

/** Offsets are whole MiB: the guest reads with dd bs=1M skip=offset/1M iflag=direct. */
export const TRANSFER_ALIGNMENT = 1024 * 1024;
/** Both drivers attach the root disk first (vda) and the transfer disk second. */
export const TRANSFER_DEVICE = '/dev/vdb';
const MAX_TRANSFER_BYTES = 1024 ** 4;

export const vmTransferPath = (vmDir: string): string => join(vmDir, 'transfer.img');

export function checkTransferDiskBytes(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_TRANSFER_BYTES)
    throw new InvalidArgumentError(`transfer disk size ${bytes} bytes is out of range 0..1 TiB`);
  return Math.ceil(bytes / TRANSFER_ALIGNMENT) * TRANSFER_ALIGNMENT;
}

/** Creates the sparse file: it takes host space only where WriteVmTransfer writes. */
export async function createTransferDisk(path: string, bytes: number): Promise<void> {
  await writeFile(path, '', { mode: 0o600 });
  await truncate(path, bytes);
}

export interface TransferWrite {
  readonly offset: number;
  readonly size: number;
  readonly digest: string;
}

/**
 * Writes the bytes at the offset, hashing them as they go; a short, long or mismatched stream fails
 * the call (the region is left as it was written, and no guest is told to read it).
 */
export async function writeTransfer(
  record: VmRecord,
  write: TransferWrite,
  chunks: AsyncIterable<Uint8Array>,
  signal?: AbortSignal,
): Promise<number> {
  const path = liveTransferPath(record);
  const capacity = record.spec.transferDiskBytes;
  if (!path || !capacity)
    throw new FailedPreconditionError(`VM ${record.id} has no transfer disk: create it with transfer_disk_bytes`);
  if (!/^sha256:[0-9a-f]{64}$/.test(write.digest))
    throw new InvalidArgumentError(`header.digest "${write.digest}" is not "sha256:<64 hex digits>"`);
  if (!Number.isSafeInteger(write.offset) || write.offset % TRANSFER_ALIGNMENT !== 0)
    throw new InvalidArgumentError(`header.offset ${write.offset} is not a multiple of ${TRANSFER_ALIGNMENT} (1 MiB)`);
  if (!Number.isSafeInteger(write.size) || write.offset + write.size > capacity)
    throw new InvalidArgumentError(
      `header.offset ${write.offset} + header.size ${write.size} is past the end of VM ${record.id}'s transfer disk (${capacity} bytes)`,
    );
  const hash = createHash('sha256');
  const file = await open(path, 'r+');
  let written = 0;
  try {
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      if (written + chunk.byteLength > write.size)
        throw new InvalidArgumentError(`more than header.size ${write.size} bytes were sent`);
      hash.update(chunk);
      for (let done = 0; done < chunk.byteLength; ) {
        const { bytesWritten } = await file.write(chunk, done, chunk.byteLength - done, write.offset + written + done);
        done += bytesWritten;
      }
      written += chunk.byteLength;
    }
  } finally {
    await file.close();
  }
  if (written !== write.size) throw new InvalidArgumentError(`${written} bytes were sent, header.size says ${write.size}`);
  const digest = `sha256:${hash.digest('hex')}`;
  if (digest !== write.digest)
    throw new InvalidArgumentError(`the ${written} bytes sent hash to ${digest}, not header.digest ${write.digest}`);
  return written;
}

/** Where the hypervisor reads the disk: a jailer that had to copy it into the jail says so in its details. */
export function liveTransferPath(record: VmRecord): string | undefined {
  return record.process?.details.transferDisk ?? record.transferDiskPath;
}
