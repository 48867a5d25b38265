import {
  VmmServiceClient,
  type CommitVmRequest,
  type CommitVmResponse,
  type CreateVmRequest,
  type CreateVmResponse,
  type Image,
  type ListImagesResponse,
  type Vm,
} from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall, InternalError, type TlsFiles } from '@kindling/runtime';
import type { BuildVmHost } from '../../ports/build-services.ts';

const service = 'vmm';

export class GrpcBuildVmHost implements BuildVmHost {
  private readonly client: VmmServiceClient;

  constructor(
    readonly hostName: string,
    address: string,
    tls?: TlsFiles,
  ) {
    this.client = createServiceClient(VmmServiceClient, address, tls);
  }

  async listImages(signal: AbortSignal): Promise<Image[]> {
    return (await unaryCall<ListImagesResponse>(service, (cb) => this.client.listImages({ name: '', includeInternal: false }, cb), signal)).images;
  }

  async createVm(request: CreateVmRequest, signal: AbortSignal): Promise<Vm> {
    const { vm } = await unaryCall<CreateVmResponse>(service, (cb) => this.client.createVm(request, cb), signal);
    if (!vm) throw new InternalError('vmm: CreateVm answered without a VM');
    return vm;
  }

  async stopVm(vmId: string, timeoutMs: number): Promise<void> {
    const timeout = { seconds: String(Math.ceil(timeoutMs / 1000)), nanos: 0 };
    await unaryCall<unknown>(service, (cb) => this.client.stopVm({ vmId, timeout, force: false }, cb));
  }

  async commitVm(request: CommitVmRequest): Promise<Image> {
    const { image } = await unaryCall<CommitVmResponse>(service, (cb) => this.client.commitVm(request, cb));
    if (!image) throw new InternalError('vmm: CommitVm answered without an image');
    return image;
  }

  async deleteVm(vmId: string): Promise<void> {
    await unaryCall<unknown>(service, (cb) => this.client.deleteVm({ vmId }, cb));
  }

  async deleteImage(image: string): Promise<void> {
    await unaryCall<unknown>(service, (cb) => this.client.deleteImage({ image }, cb));
  }

  close(): void {
    this.client.close();
  }
}
