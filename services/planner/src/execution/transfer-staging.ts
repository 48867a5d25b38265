/**
 * The large files of a COPY reach the guest through its transfer disk: the planner streams each
 * blob from the fetcher into the VM's disk on its vmm host, and the provisioner has the guest read
 * it from the block device. Under emulation the guest's sshd moves ~13 MiB/s; its disk, several
 * times that. Files the disk cannot take (or a failed write) go through SSH, as before.
 */
import { FileType } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { CopySource, TransferDisk } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import type { WriteVmTransferHeader } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { FailedPreconditionError } from '@kindling/runtime';
import type { BuildContextSource, BuildVmHost } from '../ports/build-services.ts';

/** Below this a file's SFTP round trips cost less than the disk write and the guest's dd. */
export const STAGED_MIN_BYTES = 1024 * 1024;
const ALIGNMENT = 1024 * 1024;

/** A build VM's transfer disk, as CreateVm reported it. */
export interface GuestTransferDisk {
  readonly vmId: string;
  /** The guest's block device, e.g. "/dev/vdb". */
  readonly device: string;
  readonly bytes: number;
}

export interface StagingServices {
  readonly vmHost: BuildVmHost;
  readonly context: BuildContextSource;
  warn(message: string, error: unknown): void;
}

/**
 * Writes the sources' regular files of STAGED_MIN_BYTES or more to the disk, from offset 0: the
 * caller stages one PutFiles at a time, after the last one ended, so no region is still being read.
 */
export async function stageLargeFiles(
  services: StagingServices,
  disk: GuestTransferDisk | undefined,
  sources: readonly CopySource[],
  signal: AbortSignal,
): Promise<TransferDisk | undefined> {
  if (!disk) return undefined;
  const blobs: TransferDisk['blobs'] = [];
  const staged = new Set<string>();
  let offset = 0;
  for (const file of sources.flatMap((source) => source.files)) {
    const size = Number(file.size);
    if (file.type !== FileType.FILE_TYPE_REGULAR || size < STAGED_MIN_BYTES || staged.has(file.digest)) continue;
    if (offset + size > disk.bytes) continue; // the disk is full for this copy: SSH takes it
    try {
      await writeBlob(services, { vmId: disk.vmId, offset: String(offset), size: String(size), digest: file.digest }, signal);
    } catch (error) {
      signal.throwIfAborted();
      services.warn(`could not stage ${file.path} on the transfer disk; it goes through SSH`, error);
      continue;
    }
    staged.add(file.digest);
    blobs.push({ digest: file.digest, offset: String(offset) });
    offset += Math.ceil(size / ALIGNMENT) * ALIGNMENT;
  }
  return blobs.length > 0 ? { device: disk.device, blobs } : undefined;
}

/**
 * A vmm on the fetcher's host reads the blob from its cache (no bytes through the planner); any
 * other answers FAILED_PRECONDITION, and the planner streams the blob from the fetcher to it.
 */
async function writeBlob(services: StagingServices, header: Omit<WriteVmTransferHeader, 'fromFetcherCache'>, signal: AbortSignal): Promise<void> {
  try {
    await services.vmHost.writeTransfer({ ...header, fromFetcherCache: true }, noBytes(), signal);
    return;
  } catch (error) {
    if (!(error instanceof FailedPreconditionError)) throw error;
  }
  await services.vmHost.writeTransfer({ ...header, fromFetcherCache: false }, services.context.readBlob(header.digest, signal), signal);
}

async function* noBytes(): AsyncGenerator<Uint8Array> {}
