import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CniNetworkConfigList } from './conflist.ts';

export const DEFAULT_CNI_CACHE_DIR = '/var/lib/kindling/cni';

/**
 * What an ADD leaves on disk (like libcni's cniCacheV1): the network config as it was used and the final
 * result, so DEL and CHECK work after a restart and after the conflist changed. Written before ADD
 * starts (result null) so a crash during ADD still leaves enough to DEL.
 */
export interface CniCacheEntry {
  readonly kind: 'kindling-cni-cache-v1';
  readonly containerId: string;
  readonly ifName: string;
  readonly networkName: string;
  readonly netns: string;
  readonly config: CniNetworkConfigList;
  readonly args: Record<string, string>;
  readonly result: unknown;
}

export class CniResultCache {
  constructor(readonly dir: string = DEFAULT_CNI_CACHE_DIR) {}

  private file(networkName: string, containerId: string, ifName: string): string {
    return path.join(this.dir, 'results', `${networkName}-${containerId}-${ifName}.json`);
  }

  async read(networkName: string, containerId: string, ifName: string): Promise<CniCacheEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.file(networkName, containerId, ifName), 'utf8')) as CniCacheEntry;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async write(entry: CniCacheEntry): Promise<void> {
    const file = this.file(entry.networkName, entry.containerId, entry.ifName);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(entry, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, file);
  }

  async remove(networkName: string, containerId: string, ifName: string): Promise<void> {
    await rm(this.file(networkName, containerId, ifName), { force: true });
  }
}
