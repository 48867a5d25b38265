import type { VmProcessRef } from '../ports/hypervisor.ts';
import type { CniAttachment } from '../ports/vm-network.ts';
import { InvalidArgumentError } from './errors.ts';
import type { ImageMetadata } from './image.ts';

export type VmState = 'CREATED' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'FAILED' | 'DELETED';

/** What a caller asks for in CreateVm. */
export interface VmSpec {
  /** Optional caller-chosen id; generated when absent. */
  readonly vmId?: string;
  readonly image: string;
  /** Kernel id; defaults to the image's default kernel. */
  readonly kernelId?: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  /** Disk size in bytes; 0 keeps the image's size. */
  readonly diskSizeBytes: number;
  /** CNI network (conflist) name; empty means no network. */
  readonly network: string;
  readonly authorizedKeys: string[];
  readonly hostname: string;
  /** Extra kernel arguments appended after kindling's own. */
  readonly extraKernelArgs: string;
  /** Build this VM serves, carried in events. */
  readonly buildId: string;
  readonly labels: Record<string, string>;
  /** Size of the read-only transfer disk (whole MiB); 0 attaches none. */
  readonly transferDiskBytes?: number;
}

export interface VmRecord {
  readonly id: string;
  readonly host: string;
  readonly spec: VmSpec;
  state: VmState;
  reason: string;
  readonly createdAt: string;
  updatedAt: string;
  readonly imageRef: string;
  readonly imageDigest: string;
  readonly imageMetadata?: ImageMetadata;
  readonly kernelId: string;
  readonly rootfsPath: string;
  readonly runDir: string;
  readonly consoleLogPath: string;
  /** The sparse file attached read-only as the guest's second disk (VmSpec.transferDiskBytes > 0). */
  readonly transferDiskPath?: string;
  /** Public half of the host key injected into the guest ("ssh-ed25519 AAAA... kindling-<id>"). */
  hostKeyPublic: string;
  /** Network namespace of the VM (created by the vmm before CNI ADD). */
  netnsName?: string;
  /** CNI ADD result as the VM's attachment (persisted so DEL works after a restart). */
  network?: CniAttachment;
  process?: VmProcessRef;
  /** Set by StopVm so a restart knows a dead process was asked to stop (STOPPED, not FAILED). */
  stopRequested: boolean;
  kernelArgs: string;
  /** Hypervisor driver that runs (or last ran) the VM. */
  driver: string;
  startedAt?: string;
  stoppedAt?: string;
  /** Root disk size after growing. */
  diskSizeBytes: number;
  /**
   * Set by CommitVm when the VM's disk became the image "name:tag" (one file, hard-linked, without
   * the VM's identity): StartVm first gives the VM its own copy back with its identity restored.
   */
  diskSharedWith?: string;
  /** guest.json as injected, for drivers that serve it as metadata (Firecracker MMDS). */
  guestMetadata?: Record<string, unknown>;
}

/** Transitions the lifecycle allows; everything else is a programming error or a race lost. */
const NEXT: Record<VmState, VmState[]> = {
  CREATED: ['STARTING', 'FAILED', 'DELETED'],
  STARTING: ['RUNNING', 'FAILED', 'STOPPING', 'STOPPED', 'DELETED'],
  RUNNING: ['STOPPING', 'STOPPED', 'FAILED', 'DELETED'],
  STOPPING: ['STOPPED', 'FAILED', 'DELETED'],
  STOPPED: ['STARTING', 'FAILED', 'DELETED'],
  FAILED: ['STARTING', 'DELETED', 'FAILED'],
  DELETED: [],
};

export const canTransition = (from: VmState, to: VmState): boolean => NEXT[from].includes(to);

export const isActive = (state: VmState): boolean =>
  state === 'STARTING' || state === 'RUNNING' || state === 'STOPPING';

const VM_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const isValidVmId = (id: string): boolean => VM_ID.test(id);

/** The id, or INVALID_ARGUMENT: it names a directory under the state dir, so "../vms/x" must not pass. */
export function checkVmId(id: string, field = 'VM id'): string {
  if (!isValidVmId(id)) {
    throw new InvalidArgumentError(
      `${field} "${id}" is not valid: use 1-32 lowercase letters, digits and -, starting with a letter or digit`,
    );
  }
  return id;
}
