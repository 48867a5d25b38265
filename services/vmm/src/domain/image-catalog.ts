import { stat } from 'node:fs/promises';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from './errors.ts';
import { PER_VM_FILES } from './guest-contract.ts';
import { formatImageRef, parseImageRef, type ImageMetadata, type ImageRecord, type KernelRecord } from './image.ts';
import type { VmHost } from './vm-host.ts';

/** Image and kernel use cases: list, get, delete (refusing images in use), import, commit. */
export class ImageCatalog {
  constructor(private readonly host: VmHost) {}

  private get deps() {
    return this.host.deps;
  }

  listImages(): Promise<ImageRecord[]> {
    return this.deps.images.list();
  }

  listKernels(): Promise<KernelRecord[]> {
    return this.deps.kernels.list();
  }

  async getImage(refText: string): Promise<ImageRecord> {
    const ref = parseImageRef(refText);
    const image = await this.deps.images.get(ref);
    if (!image) throw new NotFoundError(`image ${formatImageRef(ref)} does not exist on host ${this.deps.host}`);
    return image;
  }

  async deleteImage(refText: string): Promise<void> {
    const image = await this.getImage(refText);
    const name = `${image.name}:${image.tag}`;
    const users = (await this.deps.records.list()).filter((vm) => vm.imageRef === name).map((vm) => vm.id);
    if (users.length > 0) {
      throw new FailedPreconditionError(`image ${name} is used by VM ${users.join(', ')}: delete those VMs first`);
    }
    await this.deps.images.delete(parseImageRef(name));
  }

  /** Copies an ext4 image from a path on the VM host into the store as name:tag. */
  async importImage(
    path: string,
    refText: string,
    metadata: ImageMetadata,
    options: { kernelId?: string; base?: boolean } = {},
    signal?: AbortSignal,
  ): Promise<ImageRecord> {
    const ref = parseImageRef(refText);
    if (!path.startsWith('/')) throw new InvalidArgumentError(`import path "${path}" must be absolute (a path on the VM host)`);
    const source = await stat(path).catch(() => undefined);
    if (!source?.isFile()) throw new NotFoundError(`no file at ${path} on host ${this.deps.host} to import as ${formatImageRef(ref)}`);
    await this.deps.disk.filesystemBytes(path).catch((error: unknown) => {
      throw new InvalidArgumentError(`${path} is not an ext4 image: ${(error as Error).message}`);
    });
    if (options.kernelId && !(await this.deps.kernels.get(options.kernelId))) {
      throw new NotFoundError(`kernel ${options.kernelId} does not exist on host ${this.deps.host}: see ListKernels`);
    }
    return this.deps.images.put(ref, async (staging) => {
      await this.deps.disk.copy(path, staging, signal);
      return this.describe(staging, ref.name, ref.tag, '', metadata, options.kernelId, options.base ?? false, signal);
    });
  }

  /** Takes a STOPPED VM's disk as name:tag, without the VM's identity (host keys, guest.json, authorized keys). */
  async commitVm(
    vmId: string,
    refText: string,
    metadata: ImageMetadata,
    shrink: boolean,
    signal?: AbortSignal,
  ): Promise<ImageRecord> {
    const ref = parseImageRef(refText);
    const vm = await this.host.mustGet(vmId);
    if (vm.state !== 'STOPPED') {
      throw new FailedPreconditionError(
        `VM ${vmId} is ${vm.state}: only a STOPPED VM has a consistent disk to commit; call StopVm first`,
      );
    }
    return this.deps.images.put(ref, async (staging) => {
      await this.deps.disk.copy(vm.rootfsPath, staging, signal);
      await this.deps.disk.removeFiles(staging, PER_VM_FILES);
      if (shrink) await this.deps.disk.shrinkToMinimum(staging);
      return this.describe(staging, ref.name, ref.tag, vm.imageRef, metadata, vm.kernelId, false, signal);
    });
  }

  private async describe(
    rootfs: string,
    name: string,
    tag: string,
    parent: string,
    metadata: ImageMetadata,
    kernelId: string | undefined,
    base: boolean,
    signal?: AbortSignal,
  ): Promise<ImageRecord> {
    const [{ size }, digest] = await Promise.all([stat(rootfs), this.deps.disk.digest(rootfs, signal)]);
    return {
      name,
      tag,
      digest,
      sizeBytes: size,
      created: new Date().toISOString(),
      parent,
      metadata,
      ...(kernelId ? { defaultKernelId: kernelId } : {}),
      base,
    };
  }
}
