import {
  VmmServiceClient,
  type CommitVmRequest,
  type CommitVmResponse,
  type SnapshotVmRequest,
  type SnapshotVmResponse,
  type CreateImageFromArchiveRequest,
  type CreateImageFromArchiveResponse,
  type CreateImageHeader,
  type ExportImageFilesResponse,
  type TagImageRequest,
  type TagImageResponse,
  type CreateVmRequest,
  type CreateVmResponse,
  type GetHostInfoResponse,
  type Image,
  type ListImagesResponse,
  type ListVmsResponse,
  type StartVmResponse,
  type Vm,
  type WriteVmTransferHeader,
  type WriteVmTransferRequest,
  type WriteVmTransferResponse,
} from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { boundedChunks, clientStreamCall, createServiceClient, retryWhilePeerAway, streamMessages, unaryCall, InternalError, type TlsFiles } from '@kindling/runtime';
import type { BuildVmHost } from '../../ports/build-services.ts';

const service = 'vmm';
// A vmm restart (an upgrade, a crash) re-adopts its VMs: the calls that can be repeated wait it out.
const whileAway = <T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> => retryWhilePeerAway(call, signal ? { signal } : {});

export class GrpcBuildVmHost implements BuildVmHost {
  private readonly client: VmmServiceClient;

  constructor(
    readonly hostName: string,
    address: string,
    tls?: TlsFiles,
  ) {
    this.client = createServiceClient(VmmServiceClient, address, tls);
  }

  /** The host's capacity and what its VMs claim (GetHostInfo), for placement. */
  async hostInfo(signal: AbortSignal): Promise<GetHostInfoResponse> {
    return unaryCall<GetHostInfoResponse>(service, (cb) => this.client.getHostInfo({}, cb), signal);
  }

  async listImages(signal: AbortSignal, options: { includeInternal?: boolean } = {}): Promise<Image[]> {
    const request = { name: '', includeInternal: options.includeInternal ?? false };
    return (await unaryCall<ListImagesResponse>(service, (cb) => this.client.listImages(request, cb), signal)).images;
  }

  async createVm(request: CreateVmRequest, signal: AbortSignal): Promise<Vm> {
    // a VM must not be made twice: repeated only when the call never reached the vmm
    const { vm } = await retryWhilePeerAway(() => unaryCall<CreateVmResponse>(service, (cb) => this.client.createVm(request, cb), signal), { signal, unsentOnly: true });
    if (!vm) throw new InternalError('vmm: CreateVm answered without a VM');
    return vm;
  }

  async startVm(vmId: string, signal: AbortSignal): Promise<Vm> {
    // repeatable: StartVm of a VM that runs answers with it
    const { vm } = await whileAway(() => unaryCall<StartVmResponse>(service, (cb) => this.client.startVm({ vmId }, cb), signal), signal);
    if (!vm) throw new InternalError('vmm: StartVm answered without a VM');
    return vm;
  }

  async listVms(signal: AbortSignal): Promise<Vm[]> {
    return (await whileAway(() => unaryCall<ListVmsResponse>(service, (cb) => this.client.listVms({ state: 0, buildId: '' }, cb), signal), signal)).vms;
  }

  async stopVm(vmId: string, timeoutMs: number, options: { force?: boolean } = {}): Promise<void> {
    const timeout = { seconds: String(Math.ceil(timeoutMs / 1000)), nanos: 0 };
    await whileAway(() => unaryCall<unknown>(service, (cb) => this.client.stopVm({ vmId, timeout, force: options.force ?? false }, cb)));
  }

  async commitVm(request: CommitVmRequest): Promise<Image> {
    const { image } = await whileAway(() => unaryCall<CommitVmResponse>(service, (cb) => this.client.commitVm(request, cb)));
    if (!image) throw new InternalError('vmm: CommitVm answered without an image');
    return image;
  }

  snapshotVm(request: SnapshotVmRequest): { diskTaken: Promise<void>; stored: Promise<Image> } {
    let tookDisk = (): void => {};
    const diskTaken = new Promise<void>((resolve) => (tookDisk = resolve));
    const stored = (async () => {
      for await (const { progress } of streamMessages<SnapshotVmResponse>(service, this.client.snapshotVm(request), new AbortController().signal)) {
        if (progress?.$case === 'diskTaken') tookDisk();
        if (progress?.$case === 'image') return progress.value;
      }
      throw new InternalError('vmm: SnapshotVm ended without an image');
    })();
    // a snapshot that fails before its disk is taken fails both
    return { diskTaken: Promise.race([diskTaken, stored.then(() => {})]), stored };
  }

  async deleteVm(vmId: string): Promise<void> {
    await whileAway(() => unaryCall<unknown>(service, (cb) => this.client.deleteVm({ vmId }, cb)));
  }

  async deleteImage(image: string): Promise<void> {
    await whileAway(() => unaryCall<unknown>(service, (cb) => this.client.deleteImage({ image }, cb)));
  }

  async *exportImageFiles(image: string, paths: string[], signal: AbortSignal, options: { allowMissing?: boolean } = {}): AsyncGenerator<Buffer> {
    const stream = this.client.exportImageFiles({ image, paths, allowMissing: options.allowMissing ?? false });
    for await (const message of streamMessages<ExportImageFilesResponse>(service, stream, signal)) yield Buffer.from(message.chunk);
  }

  async createImageFromArchive(header: CreateImageHeader, archive: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<Image> {
    async function* messages(): AsyncGenerator<CreateImageFromArchiveRequest> {
      yield { part: { $case: 'header', value: header } };
      for await (const chunk of boundedChunks(archive)) yield { part: { $case: 'chunk', value: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) } };
    }
    const { image } = await clientStreamCall<CreateImageFromArchiveRequest, CreateImageFromArchiveResponse>(
      service,
      (cb) => this.client.createImageFromArchive(cb),
      messages(),
      signal,
    );
    if (!image) throw new InternalError('vmm: CreateImageFromArchive answered without an image');
    return image;
  }

  async writeTransfer(header: WriteVmTransferHeader, bytes: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    async function* messages(): AsyncGenerator<WriteVmTransferRequest> {
      yield { part: { $case: 'header', value: header } };
      for await (const chunk of boundedChunks(bytes)) yield { part: { $case: 'chunk', value: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) } };
    }
    await clientStreamCall<WriteVmTransferRequest, WriteVmTransferResponse>(service, (cb) => this.client.writeVmTransfer(cb), messages(), signal);
  }

  async tagImage(request: TagImageRequest): Promise<Image> {
    const { image } = await whileAway(() => unaryCall<TagImageResponse>(service, (cb) => this.client.tagImage(request, cb)));
    if (!image) throw new InternalError('vmm: TagImage answered without an image');
    return image;
  }

  close(): void {
    this.client.close();
  }
}
