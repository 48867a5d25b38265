/**
 * The files of one jail: `<chroot_base>/<exec_file_name>/<id>/root/` holding hard links (or copies,
 * across filesystems) of the kernel, initrd and rootfs, owned so the jailed uid can use them.
 * Firecracker sees them at the jail-relative paths below.
 */
import { chmod, chown, constants, copyFile, link, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FirecrackerDriverError } from './errors.ts';

/** sun_path is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export interface JailLayout {
  readonly jailId: string;
  /** `<chroot_base>/<exec_file_name>/<id>`: removed as a whole on delete. */
  readonly jailDir: string;
  /** `<jailDir>/root`: the jailed Firecracker's `/`. */
  readonly rootDir: string;
  /** Paths as the jailed Firecracker sees them. */
  readonly inJail: {
    readonly apiSocket: string;
    readonly kernel: string;
    readonly initrd: string;
    readonly rootfs: string;
    readonly transferDisk: string;
    readonly log: string;
    readonly metrics: string;
  };
  readonly apiSocketOnHost: string;
  /** The jailer writes Firecracker's pid here (`<exec_file_name>.pid` in the jail root). */
  readonly pidFileOnHost: string;
}

export function jailLayout(chrootBase: string, execName: string, jailId: string): JailLayout {
  const jailDir = join(chrootBase, execName, jailId);
  const rootDir = join(jailDir, 'root');
  const inJail = {
    apiSocket: '/run/firecracker.socket',
    kernel: '/vmlinux',
    initrd: '/initrd.img',
    rootfs: '/rootfs.ext4',
    transferDisk: '/transfer.img',
    log: '/firecracker.log',
    metrics: '/firecracker.metrics',
  };
  return {
    jailId,
    jailDir,
    rootDir,
    inJail,
    apiSocketOnHost: join(rootDir, inJail.apiSocket),
    pidFileOnHost: join(rootDir, `${execName}.pid`),
  };
}

/** Fails when a Unix socket could not be bound at path; `shorten` names the setting to change. */
export function assertSocketPathFits(path: string, shorten: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new FirecrackerDriverError(
      'FAILED_PRECONDITION',
      `${shorten} makes the API socket path ${path} ${bytes} bytes; the limit is ${MAX_SOCKET_PATH_BYTES}: use a shorter ${shorten.split(' ')[0]}`,
      { details: { socketPath: path, bytes, limit: MAX_SOCKET_PATH_BYTES } },
    );
  }
}

export function assertJailSocketFits(layout: JailLayout, chrootBase: string): void {
  assertSocketPathFits(layout.apiSocketOnHost, `--firecracker-chroot-base ${chrootBase}`);
}

export type Placement = 'linked' | 'copied';

/** Hard-link src to dest; copy when they are on different filesystems (EXDEV) or links are refused. */
export async function linkOrCopy(src: string, dest: string): Promise<Placement> {
  try {
    await link(src, dest);
    return 'linked';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw error;
    await copyFile(src, dest, constants.COPYFILE_FICLONE);
    return 'copied';
  }
}

export interface JailFiles {
  readonly kernelPath: string;
  readonly initrdPath?: string;
  readonly rootfsPath: string;
  readonly transferDiskPath?: string;
}

export interface PreparedJail {
  readonly rootfs: Placement;
  /** The rootfs's owner before it was handed to the jail uid, restored once the VM is down. */
  readonly rootfsOwner: { readonly uid: number; readonly gid: number };
  /** How the transfer disk went in: a copy (another filesystem) is the one the host must write. */
  readonly transferDisk?: Placement;
}

/**
 * Creates the jail root with the VM's files. The rootfs is the VM's own copy, so the link is
 * chowned to the jail uid (Firecracker opens it read-write). Kernel and initrd are shared store
 * files: chowning a link would chown the store's file too, so they are linked as they are when
 * world-readable and copied (then chowned) otherwise.
 */
export async function prepareJail(
  layout: JailLayout,
  files: JailFiles,
  uid: number,
  gid: number,
): Promise<PreparedJail> {
  await mkdir(join(layout.rootDir, 'run'), { recursive: true });
  const place = async (src: string, inJail: string, owned: boolean): Promise<Placement> => {
    const dest = join(layout.rootDir, inJail);
    const info = await stat(src).catch((cause: unknown) => {
      throw new FirecrackerDriverError(
        'FAILED_PRECONDITION',
        `cannot put ${src} into the jail ${layout.rootDir}: ${String(cause)}`,
        { cause },
      );
    });
    if (!owned && (info.mode & 0o004) === 0) {
      await copyFile(src, dest);
      await chown(dest, uid, gid);
      return 'copied';
    }
    const placement = await linkOrCopy(src, dest);
    if (owned) {
      await chown(dest, uid, gid);
      await chmod(dest, (info.mode & 0o777) | 0o600);
    }
    return placement;
  };
  const original = await stat(files.rootfsPath).catch(() => undefined);
  await place(files.kernelPath, layout.inJail.kernel, false);
  if (files.initrdPath !== undefined) await place(files.initrdPath, layout.inJail.initrd, false);
  const rootfs = await place(files.rootfsPath, layout.inJail.rootfs, true);
  const transferDisk = files.transferDiskPath === undefined ? undefined : await place(files.transferDiskPath, layout.inJail.transferDisk, true);
  // Firecracker opens log and metrics files, it does not create them.
  for (const file of [layout.inJail.log, layout.inJail.metrics]) {
    await writeFile(join(layout.rootDir, file), '', { mode: 0o600 });
    await chown(join(layout.rootDir, file), uid, gid);
  }
  await chown(join(layout.rootDir, 'run'), uid, gid);
  await chown(layout.rootDir, uid, gid);
  return { rootfs, rootfsOwner: { uid: original?.uid ?? 0, gid: original?.gid ?? 0 }, ...(transferDisk ? { transferDisk } : {}) };
}

/** Removes the whole jail directory (links, copies, the jailer's copy of firecracker, dev nodes, socket). */
export async function removeJail(jailDir: string): Promise<void> {
  await rm(jailDir, { recursive: true, force: true });
}
