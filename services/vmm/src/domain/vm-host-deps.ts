import type { Ext4Disk, HostKeyGenerator } from '../ports/disk.ts';
import type { HypervisorDriver } from '../ports/hypervisor.ts';
import type { ImageStore, KernelStore, VmRecordStore } from '../ports/stores.ts';
import type { NetnsPort, VmNetworkResolver } from '../ports/netns.ts';
import type { VmEventHub } from './vm-event-hub.ts';

/** pino-compatible subset the core logs through. */
export interface Logger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** Everything the VM lifecycle core needs from the outside, wired in main.ts. */
export interface VmHostDeps {
  readonly host: string;
  readonly images: ImageStore;
  readonly kernels: KernelStore;
  readonly records: VmRecordStore;
  readonly disk: Ext4Disk;
  readonly hostKeys: HostKeyGenerator;
  /** CNI network by name (conflist in the CNI config dir). */
  readonly networks: VmNetworkResolver;
  readonly netns: NetnsPort;
  /** Prefix of VM netns names, e.g. "kindling-" (tests use "kindling-test-"). */
  readonly netnsPrefix: string;
  readonly hypervisor: HypervisorDriver;
  readonly events: VmEventHub;
  readonly log: Logger;
  /** How long StopVm waits for the guest to power off before killing it. */
  readonly stopTimeoutMs: number;
  /** Network a VM joins when its spec names none ("" for none). */
  readonly defaultNetwork: string;
  /** A blob of the fetcher's cache on this host, by "sha256:<hex>"; undefined when not there (or no cache is configured). */
  readonly fetcherBlob?: (digest: string) => Promise<AsyncIterable<Uint8Array> | undefined>;
}
