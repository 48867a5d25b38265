import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@kindling/runtime';
import type { BaseOsImageJson } from '../../baseos/build.ts';
import type { ImageCatalog } from '../../domain/image-catalog.ts';
import { readJsonIfExists } from './atomic-file.ts';

/**
 * Registers every finished base-OS build in <cacheDir>/baseos/<hash>/ (image.json beside rootfs.ext4
 * and kernel/): its kernel, and its disk under each of its names. In-progress builds (dot dirs) are skipped.
 */
export async function registerCachedBaseOs(
  catalog: ImageCatalog,
  cacheDir: string,
  log: Logger,
): Promise<string[]> {
  const root = join(cacheDir, 'baseos');
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const registered: string[] = [];
  // Oldest first, so the newest build of a name is the one left registered.
  const builds: { dir: string; json: BaseOsImageJson }[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = join(root, entry.name);
    const json = await readJsonIfExists<BaseOsImageJson>(join(dir, 'image.json')).catch(() => undefined);
    if (json?.names?.length && json.kernel?.id) builds.push({ dir, json });
  }
  // Several builds may carry a name (recipe changes): the newest one wins, older ones are left alone.
  builds.sort((a, b) => b.json.created.localeCompare(a.json.created));
  const claimed = new Set<string>();
  for (const { dir, json } of builds) {
    const names = json.names.filter((name) => !claimed.has(name));
    if (names.length === 0) continue;
    names.forEach((name) => claimed.add(name));
    try {
      const records = await registerBaseOsBuild(catalog, dir, { ...json, names });
      registered.push(...records.map((r) => `${r.name}:${r.tag}`));
    } catch (error) {
      log.warn(
        { err: error, dir },
        'could not register a cached base OS build; rebuild it with `kindling baseos build`',
      );
    }
  }
  if (registered.length > 0) log.info({ images: registered, cacheDir }, 'registered cached base OS images');
  return registered;
}

/** Registers one base-OS build directory (image.json, rootfs.ext4, kernel/) under the names of its image.json. */
export function registerBaseOsBuild(catalog: ImageCatalog, dir: string, json: BaseOsImageJson) {
  const file = (name: string | undefined) => (name ? join(dir, name) : undefined);
  return catalog.registerBase({
    rootfsPath: join(dir, 'rootfs.ext4'),
    names: json.names,
    record: {
      name: json.name,
      tag: json.tag,
      digest: json.digest,
      sizeBytes: json.sizeBytes,
      created: json.created,
      parent: '',
      metadata: json.metadata,
      defaultKernelId: json.kernel.id,
      base: true,
    },
    kernel: {
      id: json.kernel.id,
      version: json.kernel.version,
      ...optional('bzImage', file(json.kernel.files.vmlinuz)),
      ...optional('vmlinux', file(json.kernel.files.vmlinux)),
      ...optional('initrd', file(json.kernel.files.initrd)),
      ...optional('config', file(json.kernel.files.config)),
    },
  });
}

const optional = <K extends string>(key: K, value: string | undefined): { [P in K]?: string } =>
  (value ? { [key]: value } : {}) as { [P in K]?: string };
