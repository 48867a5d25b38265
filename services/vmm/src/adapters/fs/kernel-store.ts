import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KernelRecord } from '../../domain/image.ts';
import type { KernelStore } from '../../ports/stores.ts';
import { runCommand } from '../exec/run-command.ts';
import { readJsonIfExists, writeFileAtomic } from './atomic-file.ts';

const FILE_NAMES = {
  bzImage: 'vmlinuz',
  vmlinux: 'vmlinux',
  initrd: 'initrd.img',
  config: 'config',
} as const;

/** Kernel store on the local filesystem: <root>/<id>/{vmlinuz,initrd.img,vmlinux,config,kernel.json}. */
export class FsKernelStore implements KernelStore {
  constructor(private readonly root: string) {}

  async get(id: string): Promise<KernelRecord | undefined> {
    return readJsonIfExists<KernelRecord>(join(this.root, id, 'kernel.json'));
  }

  async list(): Promise<KernelRecord[]> {
    const names = await readdir(this.root).catch(() => []);
    const records = await Promise.all(names.filter((n) => !n.startsWith('.')).map((n) => this.get(n)));
    return records.filter((r): r is KernelRecord => r !== undefined).sort((a, b) => a.id.localeCompare(b.id));
  }

  async put(
    id: string,
    version: string,
    files: { bzImage?: string; vmlinux?: string; initrd?: string; config?: string },
  ): Promise<KernelRecord> {
    const staging = join(this.root, `.staging-${randomBytes(6).toString('hex')}`);
    const target = join(this.root, id);
    await mkdir(staging, { recursive: true });
    try {
      const paths: Record<string, string> = {};
      for (const [kind, name] of Object.entries(FILE_NAMES)) {
        const source = files[kind as keyof typeof FILE_NAMES];
        if (!source) continue;
        await linkOrCopy(source, join(staging, name));
        paths[kind] = join(target, name);
      }
      const record: KernelRecord = {
        id,
        version,
        ...(paths.bzImage ? { bzImagePath: paths.bzImage } : {}),
        ...(paths.vmlinux ? { vmlinuxPath: paths.vmlinux } : {}),
        ...(paths.initrd ? { initrdPath: paths.initrd } : {}),
        ...(paths.config ? { configPath: paths.config } : {}),
        created: new Date().toISOString(),
      };
      await writeFileAtomic(join(staging, 'kernel.json'), `${JSON.stringify(record, null, 2)}\n`);
      const retired = join(this.root, `.retired-${randomBytes(6).toString('hex')}`);
      const replaced = await rename(target, retired).then(
        () => true,
        () => false,
      );
      await rename(staging, target);
      if (replaced) await rm(retired, { recursive: true, force: true });
      return record;
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }
}

/** Kernels and base images are immutable once stored, so a hard link is as good as a copy and instant. */
export async function linkOrCopy(source: string, destination: string): Promise<void> {
  try {
    await link(source, destination);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw error;
    // Disks are sparse: a plain copyFile would write every hole out as zeros.
    await runCommand('cp', ['--reflink=auto', '--sparse=always', source, destination]);
  }
}
