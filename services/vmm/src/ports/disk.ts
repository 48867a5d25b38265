/** A file or directory to write into a guest's ext4 root filesystem before boot. */
export interface GuestFile {
  readonly path: string;
  readonly content: string | Buffer;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}
export interface GuestDirectory {
  readonly path: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

/** Operations on ext4 disk images, all without mounting them. */
export interface Ext4Disk {
  /** Sparse copy (reflink where the filesystem can); the destination appears only when complete. */
  copy(source: string, destination: string, signal?: AbortSignal): Promise<void>;
  /** Hard-links source as destination; false when they are on different filesystems. */
  link(source: string, destination: string): Promise<boolean>;
  /** Filesystem size in bytes (block count × block size). */
  filesystemBytes(image: string): Promise<number>;
  /** Extends the file and the filesystem to `bytes` (rounded down to the block size). */
  grow(image: string, bytes: number): Promise<void>;
  /** Shrinks the filesystem to its minimum (resize2fs -M) and the file with it. */
  shrinkToMinimum(image: string): Promise<void>;
  writeFiles(image: string, directories: GuestDirectory[], files: GuestFile[]): Promise<void>;
  /** Contents of those files in the image that exist, by guest path. */
  readFiles(image: string, guestPaths: string[]): Promise<Map<string, Buffer>>;
  removeFiles(image: string, guestPaths: string[]): Promise<void>;
  /** Content address of the image file ("blake3-blocks-4m:<hex>"), costing its data, not its holes. */
  digest(image: string, signal?: AbortSignal): Promise<string>;
  /**
   * removeFiles, then the digest of the image as it leaves it; the image is read while the files are
   * removed, so this costs little more than the digest alone. `keep`, when given, first receives the
   * contents of those of the files that exist: nothing is removed before it resolves, nor if it fails.
   */
  removeFilesAndDigest(
    image: string,
    guestPaths: string[],
    keep?: (found: Map<string, Buffer>) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<string>;
  /** Which of the absolute paths do not resolve in the image (symlinks followed inside it, as in a chroot). */
  absentPaths(image: string, guestPaths: string[], signal?: AbortSignal): Promise<Set<string>>;
  /**
   * A tar of the paths (each must resolve), symlinks followed as absentPaths does; entries named by the
   * path without its leading "/", owners, modes, mtimes and hard links kept, symlinks below stay symlinks.
   */
  exportTar(image: string, guestPaths: string[], signal: AbortSignal): AsyncIterable<Buffer>;
  /** Makes `destination` an ext4 image of the archive's files with `extraBytes` free (0 = 64 MiB). */
  fromTar(archive: AsyncIterable<Uint8Array>, destination: string, extraBytes: number, signal: AbortSignal): Promise<void>;
}

export interface SshHostKey {
  readonly privateKey: string;
  readonly publicKey: string;
}
export interface HostKeyGenerator {
  generate(comment: string): Promise<SshHostKey>;
}
