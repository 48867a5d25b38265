/**
 * The step cache: the root filesystem after a step, stored on the vmm as the internal image
 * "kindling-cache/<key hex>:latest", found again by the step's effective cache key. The vmm's images
 * are the truth for what exists and its size (a snapshot deleted on the host is simply a miss); the
 * planner keeps only when each entry was last used, for LRU eviction. Entries live on the VM host
 * that made them: a build looks up, adds and evicts on its own host (on()); the planner-wide cache
 * lists and prunes over every host that answers.
 */
import { createHash } from 'node:crypto';
import type { Image } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import type { Logger } from '@kindling/runtime';
import type { BuildVmHost } from '../ports/build-services.ts';

export const CACHE_REPOSITORY_PREFIX = 'kindling-cache/';
export const CACHE_KEY_LABEL = 'kindling.cache.key';
export const CACHE_INSTRUCTION_LABEL = 'kindling.cache.instruction';

export interface CacheEntry {
  key: string;
  image: string;
  vmmHost: string;
  sizeBytes: number;
  created: Date;
  lastUsed: Date;
  instruction: string;
}

/** When each entry was last used, by key (a record store: in memory, files or JetStream KV). */
export interface LastUseRecords {
  get(key: string): Promise<Date | undefined>;
  put(key: string, when: Date): Promise<void>;
  delete(key: string): Promise<void>;
}

export class InMemoryLastUse implements LastUseRecords {
  private readonly uses = new Map<string, Date>();
  async get(key: string): Promise<Date | undefined> {
    return this.uses.get(key);
  }
  async put(key: string, when: Date): Promise<void> {
    this.uses.set(key, when);
  }
  async delete(key: string): Promise<void> {
    this.uses.delete(key);
  }
}

/** sha256 over the parent's effective key, the planned step key and the inputs only known at run time. */
export function chainKey(parent: string, plannedKey: string, runtimeInputs: readonly string[]): string {
  const hash = createHash('sha256').update(JSON.stringify([parent, plannedKey, ...runtimeInputs]));
  return `sha256:${hash.digest('hex')}`;
}

export function cacheImageFor(key: string): string {
  return `${CACHE_REPOSITORY_PREFIX}${key.replace(/^sha256:/, '')}:latest`;
}

export interface PruneOptions {
  all?: boolean;
  unusedForMs?: number;
  keepBytes?: number;
}

/** The hosts a cache spans: one, or those of a VmHostPlacement that answer now. */
export type CacheHosts = BuildVmHost | ((signal: AbortSignal) => Promise<readonly BuildVmHost[]>);

export class StepCache {
  /** Serialises prunes (shared with the per-host views) so two builds finishing at once do not delete the same entries twice. */
  private readonly pruning: { last: Promise<unknown> };
  private readonly hosts: (signal: AbortSignal) => Promise<readonly BuildVmHost[]>;

  constructor(
    hosts: CacheHosts,
    private readonly lastUse: LastUseRecords,
    /** Size limit per VM host: after a build, least recently used entries go until the host's cache fits. 0 = no limit. */
    private readonly maxBytes: number,
    private readonly log: Logger,
    pruning?: { last: Promise<unknown> },
  ) {
    this.hosts = typeof hosts === 'function' ? hosts : async () => [hosts];
    this.pruning = pruning ?? { last: Promise.resolve() };
  }

  /** The cache on one host (a build's lookups, snapshots and eviction), sharing use times and prunes with this one. */
  on(host: BuildVmHost): StepCache {
    return new StepCache(host, this.lastUse, this.maxBytes, this.log, this.pruning);
  }

  /** Every cached snapshot on the hosts, most recently used first. */
  async list(signal: AbortSignal = new AbortController().signal): Promise<CacheEntry[]> {
    return (await this.located(signal)).map(({ entry }) => entry);
  }

  private async located(signal: AbortSignal): Promise<{ entry: CacheEntry; host: BuildVmHost }[]> {
    const perHost = await Promise.all(
      (await this.hosts(signal)).map(async (host) => {
        const images = await host.listImages(signal, { includeInternal: true });
        const cached = images.filter((i) => i.name.startsWith(CACHE_REPOSITORY_PREFIX));
        return Promise.all(cached.map(async (i) => ({ entry: await this.entryOf(i, host), host })));
      }),
    );
    return perHost.flat().sort((a, b) => b.entry.lastUsed.getTime() - a.entry.lastUsed.getTime());
  }

  /** The snapshot images present, by key: one listing answers a whole stage's lookups. */
  async present(signal: AbortSignal): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const host of await this.hosts(signal)) {
      const images = await host.listImages(signal, { includeInternal: true });
      for (const i of images) if (i.name.startsWith(CACHE_REPOSITORY_PREFIX)) keys.add(i.metadata?.labels[CACHE_KEY_LABEL] ?? '');
    }
    return keys;
  }

  async touch(key: string): Promise<void> {
    await this.lastUse.put(key, new Date()).catch((error: unknown) => this.log.warn({ err: error, key }, 'could not record a cache use'));
  }

  async prune(options: PruneOptions, signal?: AbortSignal): Promise<CacheEntry[]> {
    const run = this.pruning.last.then(() => this.pruneNow(options, signal));
    this.pruning.last = run.catch(() => {});
    return run;
  }

  /** Evicts least recently used entries beyond the size limit; failures are logged, never fatal to a build. */
  async enforceLimit(): Promise<void> {
    if (this.maxBytes <= 0) return;
    const removed = await this.prune({ keepBytes: this.maxBytes }).catch((error: unknown) => {
      this.log.warn({ err: error }, 'could not evict step-cache entries');
      return [];
    });
    if (removed.length > 0) this.log.info({ removed: removed.length, bytes: removed.reduce((n, e) => n + e.sizeBytes, 0) }, 'step cache evicted');
  }

  private async pruneNow(options: PruneOptions, signal?: AbortSignal): Promise<CacheEntry[]> {
    const located = await this.located(signal ?? new AbortController().signal);
    const hostOf = new Map(located.map(({ entry, host }) => [entry, host]));
    const entries = located.map(({ entry }) => entry);
    const now = Date.now();
    const doomed = new Set<CacheEntry>();
    for (const entry of entries) {
      if (options.all) doomed.add(entry);
      else if (options.unusedForMs !== undefined && now - entry.lastUsed.getTime() >= options.unusedForMs) doomed.add(entry);
    }
    if (options.keepBytes !== undefined) {
      let total = entries.filter((e) => !doomed.has(e)).reduce((n, e) => n + e.sizeBytes, 0);
      for (const entry of [...entries].reverse()) {
        if (total <= options.keepBytes) break;
        if (doomed.has(entry)) continue;
        doomed.add(entry);
        total -= entry.sizeBytes;
      }
    }
    const removed: CacheEntry[] = [];
    for (const entry of doomed) {
      try {
        await hostOf.get(entry)!.deleteImage(entry.image);
        await this.lastUse.delete(entry.key).catch(() => {});
        removed.push(entry);
      } catch (error) {
        // e.g. a build VM is booting from it right now: keep it, it will be used
        this.log.warn({ err: error, image: entry.image }, 'could not remove a step-cache entry');
      }
    }
    return removed;
  }

  private async entryOf(image: Image, host: BuildVmHost): Promise<CacheEntry> {
    const labels = image.metadata?.labels ?? {};
    const key = labels[CACHE_KEY_LABEL] ?? '';
    const created = image.created ?? new Date(0);
    const lastUsed = (await this.lastUse.get(key).catch(() => undefined)) ?? created;
    return {
      key,
      image: `${image.name}:${image.tag}`,
      vmmHost: host.hostName,
      sizeBytes: Number(image.allocatedBytes),
      created,
      lastUsed,
      instruction: labels[CACHE_INSTRUCTION_LABEL] ?? '',
    };
  }
}
