import { InvalidArgumentError } from '../../domain/errors.ts';
import type { CniAttachment, VmNetwork } from '../../ports/vm-network.ts';
import { attachmentFromResult, type LinkFacts } from './attachment.ts';
import { DEFAULT_CNI_CONF_DIR, loadNetworkConfigList, type CniNetworkConfigList } from './conflist.ts';
import { linkFacts } from './netns.ts';
import { DEFAULT_CNI_BIN_DIRS, findPlugin, invokePlugin, type CniCommand } from './plugin-exec.ts';
import { parseCniResult } from './result.ts';
import { CniResultCache, DEFAULT_CNI_CACHE_DIR, type CniCacheEntry } from './result-cache.ts';

export interface CniNetworkOptions {
  readonly networkName: string;
  readonly confDir?: string;
  readonly binDirs?: readonly string[];
  /** Where ADD results are kept for CHECK and DEL (survives restarts). */
  readonly cacheDir?: string;
  readonly ifName?: string;
  /** Tap device name inside each VM's netns (CNI_ARGS TC_REDIRECT_TAP_NAME). */
  readonly tapName?: string;
  /** Run the plugins in this netns (path) instead of ours: where the bridge and its firewall rules live. */
  readonly hostNetnsPath?: string;
  readonly pluginTimeoutMs?: number;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Versions whose plugins implement CHECK (the spec added it in 0.4.0). */
const supportsCheck = (version: string): boolean => !/^0\.[0-3]\./.test(version);

/**
 * One CNI network (a named conflist) run the way a container runtime does: plugins chained with
 * prevResult on ADD, CHECK against the cached result, DEL in reverse order from the cached config.
 */
export class CniNetwork implements VmNetwork {
  readonly networkName: string;
  private readonly confDir: string;
  private readonly binDirs: readonly string[];
  private readonly ifName: string;
  private readonly cache: CniResultCache;

  constructor(private readonly opts: CniNetworkOptions) {
    this.networkName = opts.networkName;
    this.confDir = opts.confDir ?? DEFAULT_CNI_CONF_DIR;
    this.binDirs = opts.binDirs ?? DEFAULT_CNI_BIN_DIRS;
    this.ifName = opts.ifName ?? 'eth0';
    this.cache = new CniResultCache(opts.cacheDir ?? DEFAULT_CNI_CACHE_DIR);
  }

  /** Reads the conflist now, so a missing network fails before anything is created. */
  configList(): Promise<CniNetworkConfigList> {
    return loadNetworkConfigList(this.networkName, this.confDir);
  }

  /** The conflist, and every plugin it names found on the bin path: what CreateVm checks before creating anything. */
  async verify(): Promise<void> {
    const list = await this.configList();
    for (const plugin of list.plugins) await findPlugin(plugin.type, this.binDirs);
  }

  private args(): Record<string, string> {
    return { IgnoreUnknown: '1', ...(this.opts.tapName ? { TC_REDIRECT_TAP_NAME: this.opts.tapName } : {}) };
  }

  private run(
    command: CniCommand,
    list: CniNetworkConfigList,
    plugin: CniNetworkConfigList['plugins'][number],
    vmId: string,
    netns: string,
    args: Record<string, string>,
    prevResult: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    return invokePlugin({
      command,
      containerId: vmId,
      netns,
      ifName: this.ifName,
      args,
      binDirs: this.binDirs,
      config: {
        ...plugin,
        name: list.name,
        cniVersion: list.cniVersion,
        ...(prevResult !== undefined ? { prevResult } : {}),
      },
      ...(this.opts.hostNetnsPath ? { runInNetns: this.opts.hostNetnsPath } : {}),
      ...(this.opts.pluginTimeoutMs ? { timeoutMs: this.opts.pluginTimeoutMs } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  async attach(vmId: string, netnsPath: string, signal?: AbortSignal): Promise<CniAttachment> {
    if (!CONTAINER_ID.test(vmId))
      throw new InvalidArgumentError(
        `VM id "${vmId}" is not a valid CNI container id (letters, digits, . _ -)`,
      );
    const list = await this.configList();
    const args = this.args();
    const pending: CniCacheEntry = {
      kind: 'kindling-cni-cache-v1',
      containerId: vmId,
      ifName: this.ifName,
      networkName: this.networkName,
      netns: netnsPath,
      config: list,
      args,
      result: null,
    };
    await this.cache.write(pending);
    let prev: unknown;
    try {
      for (const plugin of list.plugins)
        prev = await this.run('ADD', list, plugin, vmId, netnsPath, args, prev, signal);
      const attachment = await this.toAttachment(vmId, netnsPath, prev);
      await this.cache.write({ ...pending, result: prev });
      return attachment;
    } catch (e) {
      // The spec leaves cleanup of a failed ADD to the runtime: DEL the whole list so nothing stays behind.
      await this.delete(pending, prev).catch(() => undefined);
      await this.cache.remove(this.networkName, vmId, this.ifName);
      throw e;
    }
  }

  private async toAttachment(vmId: string, netnsPath: string, raw: unknown): Promise<CniAttachment> {
    const result = parseCniResult(raw);
    let facts: LinkFacts = {};
    if (!result.interfaces.some((i) => i.sandbox === vmId && i.mac))
      facts = await linkFacts(netnsPath, this.ifName);
    return attachmentFromResult(
      result,
      { vmId, networkName: this.networkName, netnsPath, ifName: this.ifName },
      facts,
    );
  }

  async attachment(vmId: string): Promise<CniAttachment | undefined> {
    const entry = await this.cache.read(this.networkName, vmId, this.ifName);
    if (!entry?.result) return undefined;
    return attachmentFromResult(parseCniResult(entry.result), {
      vmId,
      networkName: this.networkName,
      netnsPath: entry.netns,
      ifName: this.ifName,
    });
  }

  async check(vmId: string, signal?: AbortSignal): Promise<void> {
    const entry = await this.cache.read(this.networkName, vmId, this.ifName);
    if (!entry?.result)
      throw new InvalidArgumentError(
        `VM ${vmId} has no attachment to CNI network "${this.networkName}" to check`,
      );
    const list = entry.config;
    if (list.disableCheck || !supportsCheck(list.cniVersion)) return;
    for (const plugin of list.plugins)
      await this.run('CHECK', list, plugin, vmId, entry.netns, entry.args, entry.result, signal);
  }

  /** DEL from the cached config and result; without a cache entry, DEL with the current conflist. Idempotent. */
  async detach(vmId: string, netnsPath?: string, signal?: AbortSignal): Promise<void> {
    const entry = await this.cache.read(this.networkName, vmId, this.ifName);
    if (entry) {
      await this.delete(entry, entry.result ?? undefined, signal);
    } else {
      const list = await this.configList();
      await this.delete(
        {
          kind: 'kindling-cni-cache-v1',
          containerId: vmId,
          ifName: this.ifName,
          networkName: this.networkName,
          netns: netnsPath ?? '',
          config: list,
          args: this.args(),
          result: null,
        },
        undefined,
        signal,
      );
    }
    await this.cache.remove(this.networkName, vmId, this.ifName);
  }

  /**
   * DEL in reverse order. Unlike ADD it goes on past a failing plugin, so one plugin's error never keeps
   * the others (e.g. host-local's lease) from being released; the first error is thrown at the end.
   */
  private async delete(entry: CniCacheEntry, prevResult: unknown, signal?: AbortSignal): Promise<void> {
    const errors: unknown[] = [];
    for (const plugin of [...entry.config.plugins].reverse()) {
      try {
        await this.run(
          'DEL',
          entry.config,
          plugin,
          entry.containerId,
          entry.netns,
          entry.args,
          prevResult ?? undefined,
          signal,
        );
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/**
 * The VmNetworkResolver the lifecycle core takes: a CniNetwork per network name, after checking that
 * the conflist exists (FAILED_PRECONDITION naming the config dir when not), so bad input creates nothing.
 */
export function cniNetworkResolver(
  defaults: Omit<CniNetworkOptions, 'networkName'>,
): (networkName: string) => Promise<CniNetwork> {
  return async (networkName) => {
    const network = new CniNetwork({ ...defaults, networkName });
    await network.configList();
    return network;
  };
}
