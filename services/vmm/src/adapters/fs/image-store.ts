import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FailedPreconditionError } from '../../domain/errors.ts';
import type { ImageRecord, ImageRef } from '../../domain/image.ts';
import type { ImageStore } from '../../ports/stores.ts';
import { readJsonIfExists, writeFileAtomic } from './atomic-file.ts';
import { linkOrCopy } from './kernel-store.ts';

/** Image store on the local filesystem: <root>/<name>/<tag>/{rootfs.ext4,image.json}. */
export class FsImageStore implements ImageStore {
  constructor(private readonly root: string) {}

  rootfsPath(ref: ImageRef): string {
    return join(this.imageDir(ref), 'rootfs.ext4');
  }

  async get(ref: ImageRef): Promise<ImageRecord | undefined> {
    const record = await readJsonIfExists<ImageRecord>(join(this.imageDir(ref), 'image.json'));
    if (!record) return undefined;
    // A record without its disk is a torn directory: not an image.
    const disk = await stat(this.rootfsPath(ref)).catch(() => undefined);
    return disk ? record : undefined;
  }

  async list(): Promise<ImageRecord[]> {
    const records: ImageRecord[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      if (entries.some((entry) => entry.name === 'image.json')) {
        const record = await readJsonIfExists<ImageRecord>(join(dir, 'image.json'));
        if (record) records.push(record);
        return;
      }
      for (const entry of entries) {
        if (entry.isDirectory() && !entry.name.startsWith('.')) await walk(join(dir, entry.name));
      }
    };
    await walk(this.root);
    return records.sort((a, b) => `${a.name}:${a.tag}`.localeCompare(`${b.name}:${b.tag}`));
  }

  async put(ref: ImageRef, fill: (stagingRootfsPath: string) => Promise<ImageRecord>): Promise<ImageRecord> {
    await this.refuseNesting(ref);
    const staging = join(this.root, `.staging-${randomBytes(6).toString('hex')}`);
    await mkdir(staging, { recursive: true });
    try {
      const record = await fill(join(staging, 'rootfs.ext4'));
      await writeFileAtomic(join(staging, 'image.json'), `${JSON.stringify(record, null, 2)}\n`);
      const target = this.imageDir(ref);
      await mkdir(dirname(target), { recursive: true });
      // A directory cannot be renamed over a non-empty one: move the old tag aside first.
      const retired = join(this.root, `.retired-${randomBytes(6).toString('hex')}`);
      const replaced = await rename(target, retired).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return false;
          throw error;
        },
      );
      await rename(staging, target);
      if (replaced) await rm(retired, { recursive: true, force: true });
      return record;
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }

  adopt(ref: ImageRef, sourceRootfs: string, record: ImageRecord): Promise<ImageRecord> {
    return this.put(ref, async (staging) => {
      await linkOrCopy(sourceRootfs, staging);
      return record;
    });
  }

  async delete(ref: ImageRef): Promise<boolean> {
    await this.refuseNesting(ref);
    const dir = this.imageDir(ref);
    const exists = await stat(dir).then(
      () => true,
      () => false,
    );
    if (!exists) return false;
    const retired = join(this.root, `.retired-${randomBytes(6).toString('hex')}`);
    await rename(dir, retired);
    await rm(retired, { recursive: true, force: true });
    await this.pruneEmptyParents(dirname(dir));
    return true;
  }

  /** Removes staging and retired directories a crash left behind. */
  async sweep(): Promise<void> {
    const entries = await readdir(this.root).catch(() => []);
    for (const name of entries) {
      if (name.startsWith('.staging-') || name.startsWith('.retired-')) {
        await rm(join(this.root, name), { recursive: true, force: true });
      }
    }
  }

  /**
   * name:tag lives in <name>/<tag>/, so "a:b" and "a/b:c" would share a/b/ (the second inside the
   * first): replacing or deleting one would take the other with it. Such a pair is refused.
   */
  private async refuseNesting(ref: ImageRef): Promise<void> {
    const parts = [...ref.name.split('/'), ref.tag];
    for (let i = 2; i < parts.length; i++) {
      const outer = { name: parts.slice(0, i - 1).join('/'), tag: parts[i - 1]! };
      if (await readJsonIfExists(join(this.imageDir(outer), 'image.json'))) throw nestingError(ref, outer);
    }
    const inner = await this.firstImageUnder(this.imageDir(ref));
    if (inner) throw nestingError(ref, inner);
  }

  private async firstImageUnder(dir: string): Promise<ImageRef | undefined> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const sub = join(dir, entry.name);
      const record = await readJsonIfExists<ImageRecord>(join(sub, 'image.json'));
      if (record) return { name: record.name, tag: record.tag };
      const deeper = await this.firstImageUnder(sub);
      if (deeper) return deeper;
    }
    return undefined;
  }

  private imageDir(ref: ImageRef): string {
    return join(this.root, ...ref.name.split('/'), ref.tag);
  }

  private async pruneEmptyParents(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.root) && current !== this.root) {
      const entries = await readdir(current).catch(() => ['?']);
      if (entries.length > 0) return;
      await rm(current, { recursive: true, force: true });
      current = dirname(current);
    }
  }
}

const nestingError = (ref: ImageRef, other: ImageRef) =>
  new FailedPreconditionError(
    `image ${ref.name}:${ref.tag} cannot be stored beside image ${other.name}:${other.tag}: the store keeps name:tag in <name>/<tag>/, so one would live inside the other; pick another name or tag`,
  );
