import { stat } from 'node:fs/promises';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from './errors.ts';
import { PER_VM_FILES, perVmFile } from './guest-contract.ts';
import {
  checkKernelId,
  formatImageRef,
  isInternalImageName,
  parseImageRef,
  type ImageMetadata,
  type ImageRecord,
  type ImageRef,
  type KernelRecord,
} from './image.ts';
import type { VmHost } from './vm-host.ts';
import type { VmRecord } from './vm.ts';

export interface CommitOptions {
  shrink?: boolean;
  overwrite?: boolean;
  live?: boolean;
  timings?: Record<string, number>;
  onDiskTaken?: () => Promise<void> | void;
}

/** Image and kernel use cases: list, get, delete (refusing images in use), import, commit. */
export class ImageCatalog {
  constructor(private readonly host: VmHost) {}

  private get deps() {
    return this.host.deps;
  }

  /**
   * Images sorted by name:tag. The build's own (step-cache snapshots, intermediate stages) are left out
   * unless asked for, or unless `name` names one of their repositories.
   */
  async listImages(filter: { name?: string; includeInternal?: boolean } = {}): Promise<ImageRecord[]> {
    const all = await this.deps.images.list();
    const named = filter.name ? all.filter((image) => image.name === filter.name) : all;
    if (filter.includeInternal || (filter.name && isInternalImageName(filter.name))) return named;
    return named.filter((image) => !isInternalImageName(image.name));
  }

  listKernels(): Promise<KernelRecord[]> {
    return this.deps.kernels.list();
  }

  async getImage(refText: string): Promise<ImageRecord> {
    const ref = parseImageRef(refText);
    const image = await this.deps.images.get(ref);
    if (!image)
      throw new NotFoundError(`image ${formatImageRef(ref)} does not exist on host ${this.deps.host}`);
    return image;
  }

  async deleteImage(refText: string): Promise<void> {
    const image = await this.getImage(refText);
    const name = `${image.name}:${image.tag}`;
    const users = (await this.deps.records.list()).filter((vm) => vm.imageRef === name).map((vm) => vm.id);
    if (users.length > 0) {
      throw new FailedPreconditionError(
        `image ${name} is used by VM ${users.join(', ')}: delete those VMs first`,
      );
    }
    await this.deps.images.delete(parseImageRef(name));
  }

  /** Copies an ext4 image from a path on the VM host into the store as name:tag. */
  async importImage(
    path: string,
    refText: string,
    metadata: ImageMetadata,
    options: { kernelId?: string; base?: boolean; overwrite?: boolean } = {},
    signal?: AbortSignal,
  ): Promise<ImageRecord> {
    const ref = parseImageRef(refText);
    await this.refuseExisting(ref, options.overwrite ?? false);
    if (!path.startsWith('/'))
      throw new InvalidArgumentError(`import path "${path}" must be absolute (a path on the VM host)`);
    const source = await stat(path).catch(() => undefined);
    if (source && !source.isFile())
      throw new InvalidArgumentError(
        `${path} is ${source.isDirectory() ? 'a directory' : 'not a regular file'}: ImportImage takes an ext4 image file (build one with mkfs.ext4 -d <dir> <file>)`,
      );
    if (!source)
      throw new NotFoundError(
        `no file at ${path} on host ${this.deps.host} to import as ${formatImageRef(ref)}`,
      );
    const filesystemBytes = await this.deps.disk.filesystemBytes(path).catch((error: unknown) => {
      throw new InvalidArgumentError(`${path} is not an ext4 image: ${(error as Error).message}`);
    });
    // A cut-off copy still has a readable superblock; a VM would meet the missing blocks as I/O errors.
    if (filesystemBytes > source.size)
      throw new InvalidArgumentError(
        `${path} is ${source.size} bytes but its ext4 filesystem spans ${filesystemBytes}: the file is truncated (an interrupted copy?); copy it again`,
      );
    if (options.kernelId && !(await this.deps.kernels.get(checkKernelId(options.kernelId)))) {
      throw new NotFoundError(
        `kernel ${options.kernelId} does not exist on host ${this.deps.host}: see ListKernels`,
      );
    }
    return this.deps.images.put(ref, async (staging) => {
      await this.deps.disk.copy(path, staging, signal);
      return this.describe(
        staging,
        ref.name,
        ref.tag,
        '',
        metadata,
        options.kernelId,
        options.base ?? false,
        signal,
      );
    });
  }

  /**
   * Takes a VM's disk as name:tag, without the VM's identity (host keys, guest.json, authorized keys):
   * a STOPPED VM's, or with `live` a RUNNING VM's whose guest filesystem the caller has frozen (the
   * disk is then copied, and the VM keeps running on its own).
   */
  async commitVm(
    vmId: string,
    refText: string,
    metadata: ImageMetadata,
    /**
     * timings, when given, receives each phase's milliseconds (takeDiskMs, then stripAndDigestMs, or
     * stripMs, shrinkMs and digestMs); onDiskTaken runs once the VM's disk is copied or linked, before
     * the rest (a live commit's caller may thaw the guest then).
     */
    options: CommitOptions = {},
    signal?: AbortSignal,
  ): Promise<ImageRecord> {
    const ref = parseImageRef(refText);
    return this.host.withVmLock(vmId, () => this.commitLocked(vmId, ref, metadata, options, signal));
  }

  private async commitLocked(
    vmId: string,
    ref: ImageRef,
    metadata: ImageMetadata,
    options: CommitOptions,
    signal?: AbortSignal,
  ): Promise<ImageRecord> {
    const vm = await this.host.mustGet(vmId);
    await this.refuseExisting(ref, options.overwrite ?? false);
    if (options.live && vm.state !== 'RUNNING') {
      throw new FailedPreconditionError(
        `VM ${vmId} is ${vm.state}: a live commit takes a RUNNING VM (its filesystem frozen); commit a STOPPED VM without live`,
      );
    }
    if (!options.live && vm.state !== 'STOPPED') {
      throw new FailedPreconditionError(
        `VM ${vmId} is ${vm.state}: only a STOPPED VM has a consistent disk to commit; call StopVm first (or freeze the guest filesystem and commit live)`,
      );
    }
    const timings = options.timings ?? {};
    const phase = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await work();
      } finally {
        timings[name] = Math.round(performance.now() - started);
      }
    };
    const image = await this.deps.images.put(ref, async (staging) => {
      const imageRef = formatImageRef(ref);
      const taken = await phase('takeDiskMs', () =>
        this.takeDisk(vm, staging, { shrink: options.shrink ?? false, live: options.live ?? false }, signal),
      );
      await options.onDiskTaken?.();
      const describe = (digest: Promise<string>) =>
        this.describe(staging, ref.name, ref.tag, vm.imageRef, metadata, vm.kernelId, false, signal, digest);
      if (taken === 'stripped') return phase('digestMs', () => describe(this.deps.disk.digest(staging, signal)));
      if (options.shrink) {
        await phase('stripMs', () => this.deps.disk.removeFiles(staging, PER_VM_FILES));
        await phase('shrinkMs', () => this.deps.disk.shrinkToMinimum(staging));
        return phase('digestMs', () => describe(this.deps.disk.digest(staging, signal)));
      }
      // the strip and the digest at once: the image is hashed while the few blocks the strip writes change
      const keep = taken === 'linked' ? (identity: Map<string, Buffer>) => this.keepIdentity(vm, identity, imageRef) : undefined;
      return phase('stripAndDigestMs', () =>
        describe(this.deps.disk.removeFilesAndDigest(staging, PER_VM_FILES, keep, signal)),
      );
    });
    this.deps.log.info({ vmId, image: formatImageRef(ref), live: options.live ?? false, ...timings }, 'VM committed');
    return image;
  }

  /**
   * Puts the VM's disk at `staging`. A stopped VM's disk is usually thrown away after its commit (a
   * build's VM is), so rather than copying it the image takes the very file (a hard link): the VM's
   * identity files are kept aside (keepIdentity, before the strip) and StartVm restores them into a
   * fresh copy, should the VM ever run again. A shrink rewrites the file in place, so it, and a disk
   * on another filesystem, is copied. A running VM's disk (live) is always copied: the VM goes on writing it.
   * Resolves "stripped" when the file is already without identity (a second commit of a shared disk).
   */
  private async takeDisk(
    vm: VmRecord,
    staging: string,
    how: { shrink: boolean; live: boolean },
    signal?: AbortSignal,
  ): Promise<'copied' | 'linked' | 'stripped'> {
    const { disk } = this.deps;
    if (!how.shrink && !how.live && (await disk.link(vm.rootfsPath, staging))) {
      return vm.diskSharedWith ? 'stripped' : 'linked';
    }
    await disk.copy(vm.rootfsPath, staging, signal);
    return 'copied';
  }

  /** The identity read from a linked disk, kept beside the VM's record before the strip removes it. */
  private async keepIdentity(vm: VmRecord, identity: Map<string, Buffer>, imageRef: string): Promise<void> {
    const { records } = this.deps;
    await records.saveIdentity(
      vm.id,
      [...identity].map(([path, content]) => perVmFile(path, content)),
    );
    // Recorded before the strip touches the shared file: from here on, StartVm restores.
    vm.diskSharedWith = imageRef;
    await records.save(vm);
  }

  /**
   * A tar of absolute paths in the image's rootfs, read without a boot (COPY --from). Each path
   * resolves inside the image as in a chroot; one that does not is NOT_FOUND, or left out with allowMissing.
   */
  async exportFiles(refText: string, paths: string[], allowMissing: boolean, signal: AbortSignal): Promise<AsyncIterable<Buffer>> {
    const image = await this.getImage(refText);
    if (paths.length === 0) throw new InvalidArgumentError('paths: name at least one absolute path to export');
    const asked = [...new Set(paths.map((p) => p.replace(/(?<=.)\/+$/, '')))];
    for (const path of asked) {
      if (!path.startsWith('/')) throw new InvalidArgumentError(`path "${path}" must be absolute (a path in image ${formatImageRef(image)})`);
      if (path.split('/').includes('..')) throw new InvalidArgumentError(`path "${path}" must not contain ".."`);
    }
    const rootfs = this.deps.images.rootfsPath(image);
    const absent = await this.deps.disk.absentPaths(rootfs, asked, signal);
    if (absent.size > 0 && !allowMissing) {
      throw new NotFoundError(`${[...absent].join(', ')} not found in image ${formatImageRef(image)}`);
    }
    return this.deps.disk.exportTar(rootfs, asked.filter((p) => !absent.has(p)), signal);
  }

  /** An image made from a tar archive's files (a FROM scratch stage): mkfs.ext4 -d, no VM. */
  async createFromArchive(
    refText: string,
    metadata: ImageMetadata,
    archive: AsyncIterable<Uint8Array>,
    options: { kernelId?: string; overwrite?: boolean; extraBytes?: number },
    signal: AbortSignal,
  ): Promise<ImageRecord> {
    const ref = parseImageRef(refText);
    await this.refuseExisting(ref, options.overwrite ?? false);
    if (options.kernelId && !(await this.deps.kernels.get(checkKernelId(options.kernelId)))) {
      throw new NotFoundError(`kernel ${options.kernelId} does not exist on host ${this.deps.host}: see ListKernels`);
    }
    return this.deps.images.put(ref, async (staging) => {
      await this.deps.disk.fromTar(archive, staging, options.extraBytes ?? 0, signal);
      return this.describe(staging, ref.name, ref.tag, '', metadata, options.kernelId, false, signal);
    });
  }

  /** The source image again under another name, its rootfs shared by hard link (same digest). */
  async tagImage(sourceText: string, refText: string, metadata: ImageMetadata | undefined, overwrite: boolean): Promise<ImageRecord> {
    const source = await this.getImage(sourceText);
    const ref = parseImageRef(refText);
    if (ref.name === source.name && ref.tag === source.tag) throw new InvalidArgumentError(`image ${refText} is the source itself`);
    await this.refuseExisting(ref, overwrite);
    const sourceRootfs = this.deps.images.rootfsPath(source);
    return this.deps.images.put(ref, async (staging) => {
      if (!(await this.deps.disk.link(sourceRootfs, staging))) await this.deps.disk.copy(sourceRootfs, staging);
      // the same image under another name: digest, size, parent and kernel stay; only the name (and metadata) differ
      const { aliases: _aliases, ...same } = source;
      return { ...same, name: ref.name, tag: ref.tag, created: new Date().toISOString(), metadata: metadata ?? source.metadata, base: false };
    });
  }

  /**
   * Registers a cached base OS build: its kernel, then its disk under every name it carries
   * (debian:bookworm and debian:12 share one hard-linked file). Unchanged registrations are skipped.
   */
  async registerBase(build: {
    rootfsPath: string;
    record: ImageRecord;
    names: string[];
    kernel: {
      id: string;
      version: string;
      bzImage?: string;
      vmlinux?: string;
      initrd?: string;
      config?: string;
    };
  }): Promise<ImageRecord[]> {
    const { kernel } = build;
    if (!(await this.deps.kernels.get(kernel.id))) {
      await this.deps.kernels.put(kernel.id, kernel.version, {
        ...(kernel.bzImage ? { bzImage: kernel.bzImage } : {}),
        ...(kernel.vmlinux ? { vmlinux: kernel.vmlinux } : {}),
        ...(kernel.initrd ? { initrd: kernel.initrd } : {}),
        ...(kernel.config ? { config: kernel.config } : {}),
      });
    }
    const registered: ImageRecord[] = [];
    for (const name of build.names) {
      const ref = parseImageRef(name);
      const current = await this.deps.images.get(ref);
      if (current?.digest === build.record.digest) {
        registered.push(current);
        continue;
      }
      const record: ImageRecord = {
        ...build.record,
        name: ref.name,
        tag: ref.tag,
        base: true,
        defaultKernelId: kernel.id,
        aliases: build.names.filter((other) => other !== name),
      };
      registered.push(await this.deps.images.adopt(ref, build.rootfsPath, record));
    }
    return registered;
  }

  private async refuseExisting(ref: { name: string; tag: string }, overwrite: boolean): Promise<void> {
    if (!overwrite && (await this.deps.images.get(ref))) {
      throw new AlreadyExistsError(
        `image ${formatImageRef(ref)} already exists on host ${this.deps.host}: pass overwrite to replace it`,
      );
    }
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
    digesting?: Promise<string>,
  ): Promise<ImageRecord> {
    const [{ size }, digest] = await Promise.all([stat(rootfs), digesting ?? this.deps.disk.digest(rootfs, signal)]);
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
