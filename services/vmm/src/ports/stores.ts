import type { ImageRecord, ImageRef, KernelRecord } from '../domain/image.ts';
import type { VmRecord } from '../domain/vm.ts';
import type { GuestFile } from './disk.ts';

/** images/<name>/<tag>/{rootfs.ext4,image.json} on the VM host. */
export interface ImageStore {
  list(): Promise<ImageRecord[]>;
  get(ref: ImageRef): Promise<ImageRecord | undefined>;
  rootfsPath(ref: ImageRef): string;
  /**
   * Publishes an image atomically: `fill` writes rootfs.ext4 into a private staging directory
   * and returns the record; the directory then replaces images/<name>/<tag> in one rename.
   */
  put(ref: ImageRef, fill: (stagingRootfsPath: string) => Promise<ImageRecord>): Promise<ImageRecord>;
  /** Publishes an immutable disk (a cached base OS) by hard link, or a copy across filesystems. */
  adopt(ref: ImageRef, sourceRootfs: string, record: ImageRecord): Promise<ImageRecord>;
  delete(ref: ImageRef): Promise<boolean>;
}

/** kernels/<id>/{vmlinuz,initrd.img,vmlinux,config,kernel.json}. */
export interface KernelStore {
  list(): Promise<KernelRecord[]>;
  get(id: string): Promise<KernelRecord | undefined>;
  /** Registers kernel files (hard-linked when on the same filesystem, else copied), atomically. */
  put(
    id: string,
    version: string,
    files: { bzImage?: string; vmlinux?: string; initrd?: string; config?: string },
  ): Promise<KernelRecord>;
}

/** vms/<id>/vm.json: the VM records the lifecycle core persists and reconciles from. */
export interface VmRecordStore {
  list(): Promise<VmRecord[]>;
  get(id: string): Promise<VmRecord | undefined>;
  save(record: VmRecord): Promise<void>;
  /** Directory owned by the VM (disk copy, sockets, console log, record). */
  vmDir(id: string): string;
  /** Keeps the VM's identity files (private host key included) beside its record, readable by root only. */
  saveIdentity(id: string, files: GuestFile[]): Promise<void>;
  /** The files saveIdentity kept, or undefined. */
  readIdentity(id: string): Promise<GuestFile[] | undefined>;
  dropIdentity(id: string): Promise<void>;
  /** Removes the VM's directory and record; idempotent. */
  remove(id: string): Promise<void>;
}
