import type { VmNetworkAttachment } from './hypervisor.ts';

/** A VM's place on a CNI network, as the lifecycle core and the hypervisor drivers need it. */
export interface CniAttachment extends VmNetworkAttachment {
  readonly vmId: string;
  readonly networkName: string;
  /** Interface the CNI plugins set up inside the netns (the veth end), e.g. eth0. */
  readonly ifName: string;
  /** Guest IPv4 address without prefix, e.g. 10.200.0.5. */
  readonly guestIp: string;
  readonly prefixLength: number;
  readonly netmask: string;
  readonly nameservers: string[];
}

/**
 * The network port: attach a VM's netns to a named network (CNI ADD), verify it (CHECK) and detach it
 * (DEL, also after a restart, from what ADD left on disk). detach is idempotent.
 */
export interface VmNetwork {
  readonly networkName: string;
  /** Refuses (FAILED_PRECONDITION) a network whose plugins are not installed, before anything is made. */
  verify(): Promise<void>;
  attach(vmId: string, netnsPath: string, signal?: AbortSignal): Promise<CniAttachment>;
  check(vmId: string, signal?: AbortSignal): Promise<void>;
  detach(vmId: string, netnsPath?: string, signal?: AbortSignal): Promise<void>;
  /** The attachment recorded on disk for vmId, if ADD succeeded and no DEL removed it. */
  attachment(vmId: string): Promise<CniAttachment | undefined>;
}
