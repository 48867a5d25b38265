/**
 * The hypervisor port: what the VM lifecycle core needs from a VMM process (qemu or firecracker).
 * Both drivers take the same VmLaunchSpec and report the same facts, so the lifecycle core,
 * its states and its events do not know which one runs the VM.
 */

/** Kernel files a VM can boot; each driver picks the form it needs (qemu: bzImage, firecracker: ELF vmlinux). */
export interface KernelFiles {
  /** Compressed bzImage (what Debian ships as /boot/vmlinuz-*). */
  readonly bzImagePath?: string;
  /** Uncompressed ELF vmlinux (Firecracker on x86_64 needs this form). */
  readonly vmlinuxPath?: string;
  readonly initrdPath?: string;
}

/** The VM's attachment to its CNI network, already set up before launch. */
export interface VmNetworkAttachment {
  /** Path of the VM's network namespace, e.g. /var/run/netns/kindling-<id>. The VMM process runs inside it. */
  readonly netnsPath: string;
  /** Tap device inside that netns that the VMM opens. */
  readonly tapName: string;
  /** Guest NIC MAC: the CNI veth's MAC, so tc-mirred redirected frames are accepted by the guest. */
  readonly guestMac: string;
  /** Guest address in CIDR form from the CNI result, e.g. 10.200.0.5/24. */
  readonly guestCidr: string;
  readonly gateway?: string;
  readonly mtu?: number;
}

export interface VmLaunchSpec {
  readonly vmId: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly kernel: KernelFiles;
  /** Full kernel command line (the driver may append driver-specific console/root args it documents). */
  readonly kernelArgs: string;
  /** Writable ext4 root filesystem, the VM's own copy. */
  readonly rootfsPath: string;
  /**
   * Attached read-only after the root disk, so the guest sees it as /dev/vdb. The host writes it
   * while the VM runs: a driver that cannot give the VMM this very file (a jail on another
   * filesystem) puts the one it gives in VmProcessRef.details.transferDisk.
   */
  readonly transferDiskPath?: string;
  readonly network?: VmNetworkAttachment;
  /** Per-VM directory the driver owns for sockets, pid files and logs; removed by the lifecycle core on delete. */
  readonly runDir: string;
  /** Serial console output goes here. */
  readonly consoleLogPath: string;
  /** Metadata for the guest (Firecracker MMDS); drivers without a metadata service ignore it. */
  readonly guestMetadata?: Record<string, unknown>;
}

/** What a driver remembers about a running VM; persisted in the VM record so a restarted vmm can re-adopt it. */
export interface VmProcessRef {
  readonly driver: string;
  readonly pid: number;
  /** Driver-specific facts needed to control the VM later (socket paths, jail dir, API version, ...). */
  readonly details: Record<string, string>;
}

export interface StopOutcome {
  /** True when the guest shut down by itself within the timeout (disk consistent); false when it was killed. */
  readonly graceful: boolean;
}

export interface HypervisorDriver {
  readonly name: 'qemu' | 'firecracker';
  /** Launch the VMM for the spec; resolves once the guest has been started (not when it is SSH-ready). */
  launch(spec: VmLaunchSpec, signal?: AbortSignal): Promise<VmProcessRef>;
  /** Ask the guest to power off; kill the VMM after timeoutMs. Resolves when the process is gone. */
  stop(ref: VmProcessRef, timeoutMs: number): Promise<StopOutcome>;
  /** Whether the VMM process of ref is still the one we started (pid alive and matching). */
  isAlive(ref: VmProcessRef): Promise<boolean>;
  /** Resolves when the VMM process exits (also for re-adopted processes that are not our children). */
  waitForExit(ref: VmProcessRef, signal?: AbortSignal): Promise<void>;
  /** Remove everything the driver created for the VM (sockets, jail, cgroups); idempotent. */
  cleanup(ref: VmProcessRef | undefined, spec: Pick<VmLaunchSpec, 'vmId' | 'runDir'>): Promise<void>;
}
