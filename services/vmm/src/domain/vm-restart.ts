import { FailedPreconditionError } from './errors.ts';
import { GUEST_DIRECTORIES, GUEST_JSON, guestNetwork, kernelArgs, perVmFile } from './guest-contract.ts';
import { pathExists } from './vm-create.ts';
import type { VmRecord } from './vm.ts';
import type { VmHostDeps } from './vm-host-deps.ts';

/**
 * What a STOPPED or FAILED VM may need before it boots again: a disk of its own (after CommitVm
 * took its disk as an image) and a network (after a host reboot took its netns). Persists as it goes.
 */
export async function prepareRestart(
  deps: VmHostDeps,
  record: VmRecord,
  signal?: AbortSignal,
): Promise<void> {
  if (record.diskSharedWith) await restoreOwnDisk(deps, record, signal);
  if (record.network && !(await pathExists(record.network.netnsPath)))
    await reattachNetwork(deps, record, signal);
}

/** A copy of the committed disk, with the identity the VM had, becomes the VM's again. */
async function restoreOwnDisk(deps: VmHostDeps, record: VmRecord, signal?: AbortSignal): Promise<void> {
  const { disk, records } = deps;
  const identity = await records.readIdentity(record.id);
  if (!identity) {
    throw new FailedPreconditionError(
      `VM ${record.id} cannot start: its disk was committed as ${record.diskSharedWith} and the identity kept aside is gone; delete the VM and create one from that image`,
    );
  }
  // The copy replaces the shared name in one rename; the image keeps the original file.
  await disk.copy(record.rootfsPath, record.rootfsPath, signal);
  await disk.writeFiles(record.rootfsPath, [...GUEST_DIRECTORIES], identity);
  delete record.diskSharedWith;
  await records.save(record);
  await records.dropIdentity(record.id);
  deps.log.info({ vmId: record.id }, 'VM disk restored after its commit');
}

/**
 * The netns is gone (the host rebooted): a new one, CNI DEL of the old attachment (its IP lease
 * outlives a reboot in host-local's data dir), ADD, and the guest told its address again.
 */
async function reattachNetwork(deps: VmHostDeps, record: VmRecord, signal?: AbortSignal): Promise<void> {
  const network = await deps.networks(record.spec.network);
  const netnsPath = await deps.netns.ensure(record.netnsName ?? `${deps.netnsPrefix}${record.id}`);
  await network.detach(record.id, netnsPath, signal);
  const attachment = await network.attach(record.id, netnsPath, signal);
  record.network = attachment;
  record.kernelArgs = kernelArgs(record.spec.hostname, attachment, record.spec.extraKernelArgs);
  const metadata = { ...record.guestMetadata, network: guestNetwork(attachment) };
  await deps.disk.writeFiles(
    record.rootfsPath,
    [...GUEST_DIRECTORIES],
    [perVmFile(GUEST_JSON, `${JSON.stringify(metadata, null, 2)}\n`)],
  );
  record.guestMetadata = metadata;
  await deps.records.save(record);
  deps.log.info({ vmId: record.id, guestCidr: attachment.guestCidr }, 'VM network re-attached');
}
