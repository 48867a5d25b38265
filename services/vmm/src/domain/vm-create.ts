import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { GUEST_JSON, guestFiles, kernelArgs } from './guest-contract.ts';
import type { ImageRecord, KernelRecord } from './image.ts';
import type { VmLaunchSpec } from '../ports/hypervisor.ts';
import type { Step } from './steps.ts';
import type { VmRecord } from './vm.ts';
import type { VmHostDeps } from './vm-host-deps.ts';
import { createTransferDisk } from './vm-transfer.ts';

export const pathExists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * CreateVm as steps: copy the image's disk, grow it, attach the network, write the guest contract.
 * Each step measures first, so re-running the plan for a half-created VM finishes it.
 */
export function createVmSteps(
  deps: VmHostDeps,
  record: VmRecord,
  image: ImageRecord,
  imageRootfs: string,
  _kernel: KernelRecord,
  save: () => Promise<void>,
  signal?: AbortSignal,
): Step[] {
  const { disk, hostKeys } = deps;
  return [
    {
      name: 'copy-rootfs',
      shouldDo: async () => !(await pathExists(record.rootfsPath)),
      do: () => disk.copy(imageRootfs, record.rootfsPath, signal),
    },
    {
      name: 'grow-rootfs',
      shouldDo: async () =>
        record.spec.diskSizeBytes > 0 &&
        (await disk.filesystemBytes(record.rootfsPath)) < record.spec.diskSizeBytes - 4096,
      do: () => disk.grow(record.rootfsPath, record.spec.diskSizeBytes),
    },
    {
      name: 'create-transfer-disk',
      shouldDo: async () => record.transferDiskPath !== undefined && !(await pathExists(record.transferDiskPath)),
      do: () => createTransferDisk(record.transferDiskPath!, record.spec.transferDiskBytes ?? 0),
    },
    {
      name: 'attach-network',
      shouldDo: async () => record.spec.network !== '' && record.network === undefined,
      do: async () => {
        const network = await deps.networks(record.spec.network);
        record.netnsName = `${deps.netnsPrefix}${record.id}`;
        await save();
        const netnsPath = await deps.netns.ensure(record.netnsName);
        record.network = await network.attach(record.id, netnsPath, signal);
        record.kernelArgs = kernelArgs(record.spec.hostname, record.network, record.spec.extraKernelArgs);
        await save();
      },
    },
    {
      name: 'inject-guest-files',
      // The host key's private half is never stored outside the guest disk, so injection is one step with its making.
      shouldDo: async () => record.hostKeyPublic === '',
      do: async () => {
        const hostKey = await hostKeys.generate(`kindling-${record.id}`);
        const { directories, files } = guestFiles({
          vmId: record.id,
          hostname: record.spec.hostname,
          ...(record.network ? { network: record.network } : {}),
          authorizedKeys: record.spec.authorizedKeys,
          hostKey,
          image,
        });
        await disk.writeFiles(record.rootfsPath, directories, files);
        record.hostKeyPublic = hostKey.publicKey;
        // The same document for drivers with a metadata service (Firecracker MMDS); it holds no secret.
        record.guestMetadata = JSON.parse(
          files.find((f) => f.path === GUEST_JSON)!.content as string,
        ) as Record<string, unknown>;
        await save();
      },
    },
  ];
}

/** What the hypervisor driver needs to boot the VM, from its record and kernel. */
export function launchSpecOf(record: VmRecord, kernel: KernelRecord): VmLaunchSpec {
  return {
    vmId: record.id,
    vcpus: record.spec.vcpus,
    memoryMib: record.spec.memoryMib,
    kernel: {
      ...(kernel.bzImagePath ? { bzImagePath: kernel.bzImagePath } : {}),
      ...(kernel.vmlinuxPath ? { vmlinuxPath: kernel.vmlinuxPath } : {}),
      ...(kernel.initrdPath ? { initrdPath: kernel.initrdPath } : {}),
    },
    kernelArgs: record.kernelArgs,
    rootfsPath: record.rootfsPath,
    ...(record.transferDiskPath ? { transferDiskPath: record.transferDiskPath } : {}),
    runDir: record.runDir,
    consoleLogPath: record.consoleLogPath,
    ...(record.guestMetadata ? { guestMetadata: record.guestMetadata } : {}),
    ...(record.network
      ? {
          network: {
            netnsPath: record.network.netnsPath,
            tapName: record.network.tapName,
            guestMac: record.network.guestMac,
            guestCidr: record.network.guestCidr,
            ...(record.network.gateway ? { gateway: record.network.gateway } : {}),
            ...(record.network.mtu ? { mtu: record.network.mtu } : {}),
          },
        }
      : {}),
  };
}

export const vmRootfsPath = (vmDir: string): string => join(vmDir, 'rootfs.ext4');
