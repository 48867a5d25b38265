/**
 * What a build needs from the other services, in the contract's own message types: the fetcher for the
 * context, a vmm host for the build VM, and the provisioner for the steps inside it. The gRPC clients in
 * adapters/clients implement these; cleanup calls take no signal because they must run after a cancel.
 */
import type { FileEntry, ListFilesResponse, ResolveContextResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { BuildSource } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type {
  ExecRequest,
  ExitStatus,
  OutputChunk,
  PutFilesRequest,
  PutFilesResponse,
  SshTarget,
} from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import type { CommitVmRequest, CreateImageHeader, CreateVmRequest, Image, SnapshotVmRequest, TagImageRequest, Vm, WriteVmTransferHeader } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';

export interface BuildContextSource {
  resolve(source: BuildSource, signal: AbortSignal): Promise<ResolveContextResponse>;
  /** `parents`: the patterns are COPY --parents sources (files keep their path below the context root or /./ pivot). */
  listFiles(
    contextId: string,
    patterns: string[],
    excludes: string[],
    signal: AbortSignal,
    options?: { parents?: boolean },
  ): Promise<ListFilesResponse>;
  fetchUrl(url: string, expectedDigest: string, signal: AbortSignal): Promise<FileEntry>;
  /** A stored blob's bytes, by "sha256:<hex>" (FetcherService.ReadBlob). */
  readBlob(digest: string, signal: AbortSignal): AsyncIterable<Buffer>;
  /** Uploads a tar archive (FetcherService.UploadContext); resolve { uploadId } to list and read its files. */
  upload(fileName: string, archive: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<{ uploadId: string; digest: string }>;
}

export interface BuildVmHost {
  /** Name of the host, for records and events. */
  readonly hostName: string;
  /** includeInternal: also step-cache snapshots and intermediate stages. */
  listImages(signal: AbortSignal, options?: { includeInternal?: boolean }): Promise<Image[]>;
  createVm(request: CreateVmRequest, signal: AbortSignal): Promise<Vm>;
  /** Boots a created (or stopped) VM; resolves once its hypervisor runs (StartVm). */
  startVm(vmId: string, signal: AbortSignal): Promise<Vm>;
  /** Every VM on the host, whoever made it (recovery finds a lost build's VMs by their labels). */
  listVms(signal: AbortSignal): Promise<Vm[]>;
  /** Powers the guest off (killed after timeoutMs); `force` kills it at once, for a guest whose filesystem is frozen. */
  stopVm(vmId: string, timeoutMs: number, options?: { force?: boolean }): Promise<void>;
  commitVm(request: CommitVmRequest): Promise<Image>;
  /**
   * A live commit of a RUNNING VM whose guest is frozen: `diskTaken` resolves once its disk is
   * copied (thaw then), `stored` with the image; both reject if it fails first. It takes no signal:
   * a build waits for its snapshots, so no staging copy outlives it.
   */
  snapshotVm(request: SnapshotVmRequest): { diskTaken: Promise<void>; stored: Promise<Image> };
  deleteVm(vmId: string): Promise<void>;
  deleteImage(image: string): Promise<void>;
  /** A tar archive of the paths (absolute, in the image's rootfs), read on the host without a boot. */
  exportImageFiles(image: string, paths: string[], signal: AbortSignal, options?: { allowMissing?: boolean }): AsyncIterable<Buffer>;
  /** An image made from a tar archive (FROM scratch), without a VM. */
  createImageFromArchive(header: CreateImageHeader, archive: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<Image>;
  /** Writes bytes into a VM's transfer disk (WriteVmTransfer), checked against header.digest. */
  writeTransfer(header: WriteVmTransferHeader, bytes: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void>;
  /** The image under another name with new metadata, its rootfs shared. */
  tagImage(request: TagImageRequest): Promise<Image>;
}

export interface BuildGuest {
  waitReady(target: SshTarget, timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Runs a command, reporting output as it arrives; resolves with its exit status. */
  exec(request: ExecRequest, onOutput: (chunk: OutputChunk) => void, signal: AbortSignal): Promise<ExitStatus>;
  putFiles(request: PutFilesRequest, signal: AbortSignal): Promise<PutFilesResponse>;
  closeSession(sessionId: string): Promise<void>;
}
