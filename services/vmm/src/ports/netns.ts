/** Network namespaces, one per VM, named so operators recognise them in `ip netns list`. */
export interface NetnsPort {
  /** Creates the namespace if missing and returns its path (e.g. /var/run/netns/kindling-vm-1). Idempotent. */
  ensure(name: string): Promise<string>;
  /** Deletes the namespace if present. Idempotent. */
  remove(name: string): Promise<void>;
}

/** Resolves a network name to its CNI network; throws FailedPreconditionError naming the config dir when unknown. */
export type VmNetworkResolver = (networkName: string) => Promise<import('./vm-network.ts').VmNetwork>;
